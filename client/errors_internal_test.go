package client

import (
	"testing"

	"github.com/mambamq/mamba/internal/wire"
)

// The SDK maps exactly the codes of the server's table, wire.Codes, each
// to its own sentinel.
func TestCodeErrorsMatchWireCodes(t *testing.T) {
	seen := map[error]string{}
	for _, c := range wire.Codes() {
		sentinel, ok := codeErrors[c.Code]
		if !ok {
			t.Errorf("wire code %s (%d) has no SDK sentinel", c.Code, c.Status)
			continue
		}
		if other, dup := seen[sentinel]; dup {
			t.Errorf("codes %s and %s share the sentinel %v", other, c.Code, sentinel)
		}
		seen[sentinel] = c.Code
		if err := (&APIError{Status: c.Status, Code: c.Code}); !err.Is(sentinel) {
			t.Errorf("an APIError with code %s does not match %v", c.Code, sentinel)
		}
	}
	if len(codeErrors) != len(wire.Codes()) {
		t.Errorf("the SDK maps %d codes, wire.Codes lists %d", len(codeErrors), len(wire.Codes()))
	}
}
