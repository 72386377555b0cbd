// Package fuzzcorpus reads and writes seed corpus files in the format of
// go test's fuzzing engine, for fuzz targets that take one []byte, so that
// a package can generate its committed seeds and check them.
package fuzzcorpus

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const header = "go test fuzz v1\n"

// Marshal encodes one []byte input as a corpus file.
func Marshal(b []byte) []byte {
	return fmt.Appendf(nil, "%s[]byte(%s)\n", header, strconv.Quote(string(b)))
}

// Unmarshal decodes a corpus file holding one []byte input.
func Unmarshal(raw []byte) ([]byte, error) {
	s, ok := strings.CutPrefix(string(raw), header)
	if !ok {
		return nil, errors.New("missing corpus file header")
	}
	s = strings.TrimSpace(s)
	s, ok = strings.CutPrefix(s, "[]byte(")
	if !ok {
		return nil, errors.New("corpus value is not a []byte")
	}
	s, ok = strings.CutSuffix(s, ")")
	if !ok {
		return nil, errors.New("corpus value is not a []byte")
	}
	v, err := strconv.Unquote(s)
	if err != nil {
		return nil, fmt.Errorf("unquote corpus value: %w", err)
	}
	return []byte(v), nil
}

// Seed is one committed seed input of a fuzz target. Seeds whose name
// starts with "valid-" must decode; all others must be rejected.
type Seed struct {
	Name string
	Data []byte
}

// Check verifies a fuzz target's committed seed corpus under
// testdata/fuzz/<target>: every seed is there, "valid-*" seeds decode, and
// the others fail with an error wrapping sentinel. With update it first
// (re)writes the seeds.
func Check(t *testing.T, target string, seeds []Seed, update bool, decode func([]byte) error, sentinel error) {
	t.Helper()
	dir := filepath.Join("testdata", "fuzz", target)
	if update {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, s := range seeds {
			if err := os.WriteFile(filepath.Join(dir, s.Name), Marshal(s.Data), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, s := range seeds {
		path := filepath.Join(dir, s.Name)
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("read seed (rerun with -update-corpus to write it): %v", err)
		}
		data, err := Unmarshal(raw)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		err = decode(data)
		switch valid := strings.HasPrefix(s.Name, "valid-"); {
		case valid && err != nil:
			t.Errorf("%s: %v", path, err)
		case !valid && err == nil:
			t.Errorf("%s: decoded without error", path)
		case !valid && !errors.Is(err, sentinel):
			t.Errorf("%s: error does not wrap %v: %v", path, sentinel, err)
		}
	}
}
