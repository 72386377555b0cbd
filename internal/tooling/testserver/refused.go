package testserver

import (
	"net"
	"testing"
)

// RefusedURL returns the http URL of a loopback port that refuses
// connections (one that was listened on and closed), for tests of what a
// client does when the server is down.
func RefusedURL(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return url
}
