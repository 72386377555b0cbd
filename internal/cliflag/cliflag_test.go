package cliflag

import (
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

func TestBindEnv(t *testing.T) {
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	var size ByteSize
	var name string
	var given int
	fs.Var(&size, "buffer-bytes", "a size")
	fs.StringVar(&name, "node-id", "", "a name")
	fs.IntVar(&given, "given", 1, "set on the command line")
	DocumentEnv(fs)
	if u := fs.Lookup("node-id").Usage; !strings.HasSuffix(u, "[$MAMBA_NODE_ID]") {
		t.Errorf("usage %q does not name MAMBA_NODE_ID", u)
	}
	if err := fs.Parse([]string{"--given", "5"}); err != nil {
		t.Fatal(err)
	}
	t.Setenv("MAMBA_BUFFER_BYTES", "8MiB")
	t.Setenv("MAMBA_NODE_ID", "a")
	t.Setenv("MAMBA_GIVEN", "9")
	if err := BindEnv(fs); err != nil {
		t.Fatal(err)
	}
	if size != 8<<20 || name != "a" || given != 5 {
		t.Errorf("after BindEnv: size %d, name %q, given %d; want 8MiB, a, 5 (the command line wins)", size, name, given)
	}

	t.Setenv("MAMBA_BUFFER_BYTES", "lots")
	t.Setenv("MAMBA_NODE_ID", "b")
	fs2 := pflag.NewFlagSet("test", pflag.ContinueOnError)
	fs2.Var(&size, "buffer-bytes", "a size")
	if err := BindEnv(fs2); err == nil || !strings.Contains(err.Error(), `MAMBA_BUFFER_BYTES="lots"`) {
		t.Errorf("BindEnv with a bad size = %v, want an error naming MAMBA_BUFFER_BYTES", err)
	}
}

func TestByteSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"8MiB", 8 << 20, true},
		{"256MB", 256e6, true},
		{"1048576", 1 << 20, true},
		{"2PiB", 0, false},
		{"many", 0, false},
	} {
		var b ByteSize
		err := b.Set(tc.in)
		if (err == nil) != tc.ok || (tc.ok && int64(b) != tc.want) {
			t.Errorf("Set(%q) = %d, %v; want %d, ok %v", tc.in, b, err, tc.want, tc.ok)
		}
	}
}

func TestDuration(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		str  string
		ok   bool
	}{
		{"7d", 7 * 24 * time.Hour, "7d", true},
		{"0d", 0, "0s", true},
		{"90s", 90 * time.Second, "1m30s", true},
		{"48h", 48 * time.Hour, "2d", true},
		{"0", 0, "0s", true},
		{"-1h", 0, "", false},
		{"-1d", 0, "", false},
		{"1.5d", 0, "", false},
		{"99999d", 0, "", false},
		{"soon", 0, "", false},
	} {
		var d Duration
		err := d.Set(tc.in)
		if (err == nil) != tc.ok || (tc.ok && (time.Duration(d) != tc.want || d.String() != tc.str)) {
			t.Errorf("Set(%q) = %v (%s), %v; want %v (%s), ok %v", tc.in, time.Duration(d), d.String(), err, tc.want, tc.str, tc.ok)
		}
	}
}
