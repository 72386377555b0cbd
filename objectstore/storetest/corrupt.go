package storetest

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"testing"

	"github.com/mambamq/mamba/objectstore"
)

// CorruptingTransport flips one byte in the middle of every PUT body on
// its way to the service, as a faulty network or proxy might, without
// changing its length.
type CorruptingTransport struct{ Base http.RoundTripper }

func (c CorruptingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method != http.MethodPut || r.Body == nil || r.ContentLength <= 0 {
		return c.Base.RoundTrip(r)
	}
	body, err := io.ReadAll(r.Body)
	r.Body.Close()
	if err != nil {
		return nil, err
	}
	body[len(body)/2] ^= 0x55
	r = r.Clone(r.Context())
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	return c.Base.RoundTrip(r)
}

// CheckCorruptPutRejected checks that s, whose requests go through a
// CorruptingTransport, fails a Put rather than store a corrupt object:
// the integrity of a PUT body must not rest on the signature alone.
func CheckCorruptPutRejected(t *testing.T, s objectstore.Store) {
	t.Helper()
	data := bytes.Repeat([]byte("chunk bytes "), 10_000)
	if err := s.Put(t.Context(), "corrupt", data); err == nil {
		got, gerr := s.Get(t.Context(), "corrupt")
		t.Fatalf("put of a corrupted body succeeded; stored %d bytes, equal to sent: %t (get err %v)", len(got), bytes.Equal(got, data), gerr)
	}
	if _, err := s.Stat(t.Context(), "corrupt"); !errors.Is(err, objectstore.ErrNotExist) {
		t.Fatalf("stat after a rejected put: err = %v, want ErrNotExist", err)
	}
}
