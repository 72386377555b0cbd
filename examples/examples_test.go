// Package examples_test builds the SDK examples and runs them against an
// in-process node found through MAMBA_URL, as a user would.
package examples_test

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mambamq/mamba/mambatest"
)

// build compiles the example in dir and returns the binary's path.
func build(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), dir)
	cmd := exec.Command("go", "build", "-o", bin, "./"+dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./examples/%s: %v\n%s", dir, err, out)
	}
	return bin
}

// The producer example, given only MAMBA_URL, creates its topic and
// produces; the group consumer example, given only MAMBA_URL, reads every
// record and exits cleanly on an interrupt.
func TestExamplesFollowMAMBA_URL(t *testing.T) {
	producer, consumer := build(t, "producer"), build(t, "groupconsumer")
	srv := mambatest.Start(t)
	env := append(os.Environ(), "MAMBA_URL="+srv.URL)

	const count = 50
	cmd := exec.Command(producer, "--topic", "ex", "--count", strconv.Itoa(count))
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("producer: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), strconv.Itoa(count)+" records acknowledged, 0 failed") {
		t.Fatalf("producer said:\n%s", out)
	}
	d, err := srv.Client.DescribeTopic(t.Context(), "ex")
	if err != nil {
		t.Fatal(err)
	}
	var stored int64
	for _, ps := range d.PartitionStats {
		stored += ps.HighWatermark
	}
	if stored != count+1 { // and its first, waited-for record
		t.Fatalf("topic ex holds %d records, want %d", stored, count+1)
	}

	cmd = exec.Command(consumer, "--topic", "ex", "--group", "g")
	cmd.Env = env
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		exited <- cmd.Wait()
	}()
	deadline := time.After(30 * time.Second)
	seen := 0
	for seen < count+1 {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("group consumer exited after %d records: %v", seen, <-exited)
			}
			if strings.HasPrefix(l, "ex/") {
				seen++
			}
		case <-deadline:
			_ = cmd.Process.Kill()
			t.Fatalf("group consumer printed %d of %d records in 30 s", seen, count+1)
		}
	}
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	for range lines {
	}
	if err := <-exited; err != nil {
		t.Fatalf("group consumer after an interrupt: %v", err)
	}
	// It committed on Close: the group's offsets cover every record.
	g, err := srv.Client.DescribeGroup(t.Context(), "g")
	if err != nil {
		t.Fatal(err)
	}
	var committed int64
	for _, o := range g.Offsets {
		committed += o.CommittedOffset
	}
	if committed != count+1 {
		t.Fatalf("group g committed %d records, want %d", committed, count+1)
	}
}
