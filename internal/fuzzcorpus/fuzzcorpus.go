// Package fuzzcorpus reads and writes seed corpus files in the format of
// go test's fuzzing engine, for fuzz targets that take one []byte, so that
// a package can generate its committed seeds and check them.
package fuzzcorpus

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
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
