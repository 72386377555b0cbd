package layoutcheck

import (
	"os/exec"
	"strings"
	"testing"
)

// The mamba binary must not link the benchmark's clients and histograms:
// they belong to cmd/mamba-bench, which `mamba bench` runs. (That the SDK
// depends on nothing of the module but internal/wire is checked by
// client's TestImportGraph.)
func TestMambaBinaryLeavesOutBenchmarkDeps(t *testing.T) {
	cmd := exec.Command("go", "list", "-deps", "./cmd/mamba")
	cmd.Dir = repoRoot(t)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps ./cmd/mamba: %v\n%s", err, out)
	}
	deps := 0
	for line := range strings.Lines(string(out)) {
		deps++
		for _, banned := range []string{"nats-io", "HdrHistogram", "internal/tooling/bench"} {
			if strings.Contains(line, banned) {
				t.Errorf("cmd/mamba depends on %s", strings.TrimSpace(line))
			}
		}
	}
	// A listing this short means go list looked at the wrong package.
	if deps < 50 {
		t.Fatalf("go list -deps ./cmd/mamba listed only %d packages:\n%s", deps, out)
	}
}
