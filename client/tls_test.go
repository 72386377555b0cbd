package client_test

import (
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mambamq/mamba/client"
	"github.com/mambamq/mamba/internal/tooling/testcert"
)

// The TLS options read their files in New and report what is wrong with
// them there. They are exercised against a real HTTPS node in
// cmd/mamba's TLS tests.
func TestTLSOptionErrors(t *testing.T) {
	dir := t.TempDir()
	ca := testcert.NewCA(t, "test CA")
	caFile := ca.WriteCA(t, dir, "ca.pem")
	pair := ca.Client(t, "app", 2).Write(t, dir, "app")
	other := ca.Client(t, "other", 3).Write(t, dir, "other")
	for _, tc := range []struct {
		name string
		opts []client.Opt
		want string // "" for no error
	}{
		{"a CA file", []client.Opt{client.WithCAFile(caFile)}, ""},
		{"two CA files", []client.Opt{client.WithCAFile(caFile), client.WithCAFile(caFile)}, ""},
		{"a client certificate", []client.Opt{client.WithClientCertificate(pair.CertFile, pair.KeyFile)}, ""},
		{"a missing CA file", []client.Opt{client.WithCAFile(filepath.Join(dir, "nope.pem"))}, "nope.pem"},
		{"a CA file without a certificate", []client.Opt{client.WithCAFile(pair.KeyFile)}, "no PEM certificate"},
		{"an empty CA path", []client.Opt{client.WithCAFile("")}, "WithCAFile: empty path"},
		{"a key that is not the certificate's", []client.Opt{client.WithClientCertificate(pair.CertFile, other.KeyFile)}, "private key does not match"},
		{"a missing key", []client.Opt{client.WithClientCertificate(pair.CertFile, "")}, "want both"},
		{"a CA file and an HTTP client", []client.Opt{client.WithCAFile(caFile), client.WithHTTPClient(&http.Client{})}, "cannot be combined with WithHTTPClient"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := client.New("https://127.0.0.1:1", tc.opts...)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("New: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("New = %v, %v; want an error naming %q", c, err, tc.want)
			}
		})
	}
}
