package fuzzcorpus

import (
	"bytes"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	for _, in := range [][]byte{{}, []byte("plain"), {0, 1, 0xff, '"', '\\', '\n'}} {
		out, err := Unmarshal(Marshal(in))
		if err != nil || !bytes.Equal(out, in) {
			t.Errorf("round trip of %q = %q, %v", in, out, err)
		}
	}
	for _, bad := range []string{"", "go test fuzz v1\nstring(\"x\")", "go test fuzz v1\n[]byte(x)"} {
		if _, err := Unmarshal([]byte(bad)); err == nil {
			t.Errorf("Unmarshal(%q) succeeded", bad)
		}
	}
}
