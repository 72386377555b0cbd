package chunkid

import (
	"strings"
	"sync"
	"testing"
	"time"
)

func TestIDsIncreaseAndParse(t *testing.T) {
	now := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	g, err := NewGenerator("node-a.1", clock)
	if err != nil {
		t.Fatal(err)
	}
	var prev ID
	for i := range 2000 {
		// Time stands still, jumps ahead, and steps back.
		switch i {
		case 500:
			now = now.Add(time.Second)
		case 1000:
			now = now.Add(-time.Hour)
		}
		id, err := g.New()
		if err != nil {
			t.Fatal(err)
		}
		if i > 0 && (id.Compare(prev) <= 0 || id.String() <= prev.String()) {
			t.Fatalf("id %d %s is not after %s", i, id, prev)
		}
		parsed, err := Parse(id.String())
		if err != nil || parsed != id {
			t.Fatalf("Parse(%s) = %v, %v", id, parsed, err)
		}
		if !strings.HasSuffix(id.String(), "-node-a.1") {
			t.Fatalf("id %s does not carry the node id", id)
		}
		prev = id
	}
	if got := prev.Time(); got.Before(time.Date(2026, 11, 21, 10, 0, 1, 0, time.UTC)) {
		t.Fatalf("id time went back with the clock: %v", got)
	}
}

func TestConcurrentIDsAreUnique(t *testing.T) {
	g, err := NewGenerator("n", nil)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	seen := map[string]bool{}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 500 {
				id, err := g.New()
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				if seen[id.String()] {
					t.Errorf("duplicate id %s", id)
				}
				seen[id.String()] = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(seen) != 4000 {
		t.Fatalf("got %d ids, want 4000", len(seen))
	}
}

func TestParseRejects(t *testing.T) {
	good := "01JD3V8Q3E5Z4W9K2M7N6P0R1S-node"
	if _, err := Parse(good); err != nil {
		t.Fatalf("Parse(%q): %v", good, err)
	}
	for _, s := range []string{
		"", "node", "01JD3V8Q3E5Z4W9K2M7N6P0R1S", "01JD3V8Q3E5Z4W9K2M7N6P0R1S-",
		"01JD3V8Q3E5Z4W9K2M7N6P0R1S_node", "01jd3v8q3e5z4w9k2m7n6p0r1s-node",
		"01JD3V8Q3E5Z4W9K2M7N6P0R1U-node", "81JD3V8Q3E5Z4W9K2M7N6P0R1S-node",
		"01JD3V8Q3E5Z4W9K2M7N6P0R1S-no/de", "01JD3V8Q3E5Z4W9K2M7N6P0R1S-" + strings.Repeat("n", 65),
	} {
		if _, err := Parse(s); err == nil {
			t.Errorf("Parse(%q) succeeded", s)
		}
	}
	if _, err := NewGenerator("bad node", nil); err == nil {
		t.Error("NewGenerator accepted a node id with a space")
	}
}
