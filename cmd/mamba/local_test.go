package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/mambamq/mamba/internal/tooling/testserver"
)

// runScript runs one of the deploy/local scripts and returns its output.
func runScript(t *testing.T, name string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command("bash", append([]string{filepath.Join("..", "..", "deploy", "local", name)}, args...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// The local cluster scripts: up with a DR region, produce and consume
// through two nodes, see a chunk reach region B, and down leaves no
// process behind.
func TestLocalClusterScripts(t *testing.T) {
	for _, bin := range []string{"minio", "mc", "redis-server"} {
		testserver.RequireBinary(t, bin)
	}
	state := t.TempDir()
	t.Setenv("MAMBA_LOCAL_DIR", state)
	out, err := runScript(t, "up.sh", "--nodes", "2", "--dr")
	t.Cleanup(func() {
		if out, err := runScript(t, "down.sh"); err != nil {
			t.Errorf("down.sh: %v\n%s", err, out)
		}
	})
	if err != nil {
		t.Fatalf("up.sh: %v\n%s", err, out)
	}
	if out, err := runScript(t, "status.sh"); err != nil {
		t.Fatalf("status.sh after up: %v\n%s", err, out)
	}
	pids := map[string]int{}
	files, _ := filepath.Glob(filepath.Join(state, "*.pid"))
	for _, f := range files {
		raw, _ := os.ReadFile(f)
		pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		pids[filepath.Base(f)] = pid
	}
	if len(pids) != 6 { // 2 nodes, MinIO and Redis in both regions
		t.Fatalf("up.sh started %d processes, want 6: %v", len(pids), pids)
	}

	a, b := "http://127.0.0.1:8080", "http://127.0.0.1:8081"
	if code := doJSON(t, "POST", a+"/v1/topics", map[string]any{"name": "orders", "partitions": 2}, nil); code != http.StatusCreated {
		t.Fatalf("create topic: %d", code)
	}
	var ans produceAnswer
	if code := doJSON(t, "POST", a+"/v1/topics/orders/records", map[string]any{"records": []map[string]any{{"value": "through-the-cluster", "partition": 1}}}, &ans); code != http.StatusOK {
		t.Fatalf("produce: %d", code)
	}
	var got fetchAnswer
	url := fmt.Sprintf("%s/v1/topics/orders/partitions/1/records?offset=%d", b, ans.Records[0].Offset)
	if code := doJSON(t, "GET", url, nil, &got); code != http.StatusOK || len(got.Records) != 1 || got.Records[0].Value != "through-the-cluster" {
		t.Fatalf("consume through the other node: %d %+v", code, got)
	}

	// The chunk reaches region B's bucket by replication.
	regionB, err := minio.New("127.0.0.1:9100", &minio.Options{Creds: credentials.NewStaticV4("mamba", "mamba-secret", "")})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	for replicated := false; !replicated; {
		for obj := range regionB.ListObjectsIter(ctx, "mamba", minio.ListObjectsOptions{Prefix: "chunks/", Recursive: true}) {
			if obj.Err == nil {
				replicated = true
				break
			}
		}
		if !replicated {
			if ctx.Err() != nil {
				t.Fatal("no chunk reached region B within 60s")
			}
			time.Sleep(100 * time.Millisecond) // polling the replica, bounded by ctx
		}
	}

	if out, err := runScript(t, "down.sh"); err != nil {
		t.Fatalf("down.sh: %v\n%s", err, out)
	}
	for name, pid := range pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("%s (pid %d) still runs after down.sh (kill -0: %v)", name, pid, err)
		}
	}
	if left, _ := filepath.Glob(filepath.Join(state, "*.pid")); len(left) != 0 {
		t.Errorf("pid files left after down.sh: %v", left)
	}
}
