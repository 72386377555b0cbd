package main

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mambamq/mamba/bucket"
	"github.com/mambamq/mamba/internal/tooling/testserver"
	"github.com/mambamq/mamba/objectstore/storeurl"
	"github.com/mambamq/mamba/recovery"
)

// runMamba runs the mamba command in-process and returns its stdout and
// stderr.
func runMamba(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	cmd := newRootCmd()
	var stdout, stderr bytes.Buffer
	cmd.SetOut(&stdout)
	cmd.SetErr(&stderr)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(t.Context())
	return stdout.String(), stderr.String(), err
}

// A node draining on SIGTERM writes a last checkpoint that holds all it
// committed; mamba restore rebuilds a fresh Redis from it, after which a
// new node serves every record at its original offset.
func TestRestoreCommandAfterDrain(t *testing.T) {
	m := testserver.StartMinIO(t)
	r := testserver.StartRedis(t, testserver.RedisOptions{AppendFsync: "always"})
	bucketName := m.CreateBucket(t, "mamba")
	// An hour between checkpoints: the first one is written at start, the
	// only other one by the drain.
	n := testserver.StartMamba(t, m, r, bucketName, "node-a", "--flush-interval", "20ms", "--checkpoint-interval", "1h")
	if code := doJSON(t, "POST", n.URL+"/v1/topics", map[string]any{"name": "orders", "partitions": 3}, nil); code != http.StatusCreated {
		t.Fatalf("create topic: %d", code)
	}
	want := map[[2]int64]string{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			client := &http.Client{Timeout: 30 * time.Second}
			for i := range 15 {
				values := []string{fmt.Sprintf("w%d-%d-a", w, i), fmt.Sprintf("w%d-%d-b", w, i)}
				code, res, err := postProduce(client, n.URL+"/v1/topics/orders/records", w%2 == 0, fmt.Sprintf("w%d-%d", w, i), values, []string{"", "k"})
				if err != nil || code != http.StatusOK || len(res) != 2 {
					t.Errorf("produce: %d %v", code, err)
					return
				}
				mu.Lock()
				for j, rr := range res {
					want[[2]int64{int64(rr.Partition), rr.Offset}] = values[j]
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	if err := n.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := n.Wait(); code != 0 {
		t.Fatalf("mamba serve exited %d after SIGTERM", code)
	}

	t.Setenv("AWS_ACCESS_KEY_ID", m.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", m.SecretKey)
	t.Setenv("AWS_REGION", "us-east-1")
	bucketURL := "s3://" + bucketName + "?endpoint=" + m.Endpoint
	store, err := storeurl.Open(t.Context(), bucketURL)
	if err != nil {
		t.Fatal(err)
	}
	var newest []byte
	for obj, err := range store.List(t.Context(), bucket.CheckpointPrefix) {
		if err != nil {
			t.Fatal(err)
		}
		if newest, err = store.Get(t.Context(), obj.Key); err != nil {
			t.Fatal(err)
		}
	}
	snap, err := recovery.DecodeCheckpoint(newest)
	if err != nil {
		t.Fatalf("newest checkpoint: %v", err)
	}
	var inCheckpoint int64
	for _, ps := range snap.Topics[0].Partitions {
		inCheckpoint += ps.HighWatermark
	}
	if inCheckpoint != int64(len(want)) {
		t.Fatalf("the drain's checkpoint holds %d records, %d were acknowledged", inCheckpoint, len(want))
	}

	fresh := testserver.StartRedis(t, testserver.RedisOptions{AppendFsync: "always"})
	args := []string{"restore", "--bucket", bucketURL, "--redis", "redis://" + fresh.Addr + "/0"}
	stdout, stderr, err := runMamba(t, args...)
	if err != nil {
		t.Fatalf("mamba restore: %v\nstdout:\n%s\nstderr:\n%s", err, stdout, stderr)
	}
	t.Logf("mamba restore:\n%s%s", stderr, stdout)
	for _, want := range []string{"checkpoint:  checkpoints/", "-node-a.ckpt", "topics:      1 ", "took:"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("summary does not say %q:\n%s", want, stdout)
		}
	}
	if !strings.Contains(stderr, "replayed") || !strings.Contains(stderr, "(100%)") {
		t.Errorf("progress on a non-terminal stderr:\n%s", stderr)
	}

	// A second restore refuses the Redis the first one filled.
	_, _, err = runMamba(t, args...)
	if err == nil || !strings.Contains(err.Error(), "already holds keys") || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("second restore: err = %v, want a refusal naming --force", err)
	}
	// With the environment and --force it goes ahead.
	t.Setenv("MAMBA_BUCKET", bucketURL)
	t.Setenv("MAMBA_REDIS", "redis://"+fresh.Addr+"/0")
	if stdout, _, err := runMamba(t, "restore", "--force"); err != nil || !strings.Contains(stdout, "deleted ") {
		t.Fatalf("restore --force: %v\n%s", err, stdout)
	}

	// Every record is back at its offset.
	n2 := testserver.StartMamba(t, m, fresh, bucketName, "node-b")
	read := 0
	for p := range 3 {
		for i, rec := range fetchBinary(t, n2.URL, p) {
			if rec.Offset != int64(i) || want[[2]int64{int64(p), rec.Offset}] != string(rec.Value) {
				t.Fatalf("partition %d offset %d = %q, acknowledged %q", p, rec.Offset, rec.Value, want[[2]int64{int64(p), rec.Offset}])
			}
			read++
		}
	}
	if read != len(want) {
		t.Fatalf("read %d records after restore, %d acknowledged", read, len(want))
	}
}

func TestRestoreCommandErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"restore"}, "--bucket"},
		{[]string{"restore", "--bucket", "mem://", "--redis", "nope://x"}, "--redis"},
		{[]string{"restore", "--bucket", "mem://", "--concurrency", "0"}, "--concurrency"},
		{[]string{"restore", "--bucket", "ftp://x"}, "ftp"},
	} {
		_, _, err := runMamba(t, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("mamba %v: err = %v, want one naming %s", tc.args, err, tc.want)
		}
	}
	// An unreachable Redis fails before anything else.
	r := testserver.StartRedis(t, testserver.RedisOptions{})
	addr := r.Addr
	r.Kill()
	if _, _, err := runMamba(t, "restore", "--bucket", "mem://", "--redis", "redis://"+addr+"/0"); err == nil || !strings.Contains(err.Error(), "redis") {
		t.Errorf("restore into a stopped Redis: err = %v", err)
	}
}
