package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mambamq/mamba/bucket"
	"github.com/mambamq/mamba/internal/tooling/testserver"
	"github.com/mambamq/mamba/objectstore/storeurl"
)

// Region A (MinIO, Redis, a node) replicates its bucket to region B's
// MinIO with real bucket replication set up by
// deploy/replication/minio-setup.sh. Records are produced while a consumer
// group commits offsets; once dr status says the replica is in sync and it
// holds a checkpoint taken after the last write, region A is killed with
// SIGKILL, dr failover restores region B's Redis from the replica and a node
// in region B serves every acknowledged record exactly once at its offset,
// with the group's committed offsets.
func TestDRFailoverToReplica(t *testing.T) {
	mc := testserver.RequireBinary(t, "mc")
	mA := testserver.StartMinIO(t)
	mB := testserver.StartMinIO(t)
	rA := testserver.StartRedis(t, testserver.RedisOptions{AppendFsync: "always"})
	rB := testserver.StartRedis(t, testserver.RedisOptions{AppendFsync: "always"})
	const bucketA, bucketB = "mamba", "mamba-replica"

	script, err := filepath.Abs("../../deploy/replication/minio-setup.sh")
	if err != nil {
		t.Fatal(err)
	}
	setup := exec.CommandContext(t.Context(), "bash", script)
	setup.Env = append(os.Environ(),
		"MC="+mc,
		"A_ENDPOINT="+mA.Endpoint, "A_ACCESS_KEY="+mA.AccessKey, "A_SECRET_KEY="+mA.SecretKey, "A_BUCKET="+bucketA,
		"B_ENDPOINT="+mB.Endpoint, "B_ACCESS_KEY="+mB.AccessKey, "B_SECRET_KEY="+mB.SecretKey, "B_BUCKET="+bucketB,
	)
	out, err := setup.CombinedOutput()
	if err != nil {
		t.Fatalf("minio-setup.sh: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "rule added") {
		t.Fatalf("minio-setup.sh added no replication rule:\n%s", out)
	}
	// A second run changes nothing.
	setup2 := exec.CommandContext(t.Context(), "bash", script)
	setup2.Env = setup.Env
	if out, err := setup2.CombinedOutput(); err != nil || !strings.Contains(string(out), "rule already present") {
		t.Fatalf("second minio-setup.sh: %v\n%s", err, out)
	}

	// Both MinIO servers have the same test credentials.
	t.Setenv("AWS_ACCESS_KEY_ID", mA.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", mA.SecretKey)
	t.Setenv("AWS_REGION", "us-east-1")
	urlA := "s3://" + bucketA + "?endpoint=" + mA.Endpoint
	urlB := "s3://" + bucketB + "?endpoint=" + mB.Endpoint

	nA := testserver.StartMamba(t, mA, rA, bucketA, "node-a", "--flush-interval", "20ms", "--checkpoint-interval", "500ms")
	if code := doJSON(t, "POST", nA.URL+"/v1/topics", map[string]any{"name": "orders", "partitions": 3}, nil); code != http.StatusCreated {
		t.Fatalf("create topic: %d", code)
	}

	// Producers.
	want := map[[2]int64]string{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	producing := make(chan struct{})
	for w := range 3 {
		wg.Go(func() {
			client := &http.Client{Timeout: 30 * time.Second}
			for i := range 25 {
				values := []string{fmt.Sprintf("w%d-%d-a", w, i), fmt.Sprintf("w%d-%d-b", w, i)}
				code, res, err := postProduce(client, nA.URL+"/v1/topics/orders/records", w%2 == 0, fmt.Sprintf("w%d-%d", w, i), values, []string{"", "k"})
				if err != nil || code != http.StatusOK || len(res) != 2 {
					t.Errorf("produce: %d %v", code, err)
					return
				}
				mu.Lock()
				for j, rr := range res {
					want[[2]int64{int64(rr.Partition), rr.Offset}] = values[j]
				}
				mu.Unlock()
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
	go func() { wg.Wait(); close(producing) }()

	// A consumer group member reads and commits as it goes, and once more
	// after the producers finish.
	var join struct {
		MemberID    string `json:"member_id"`
		SessionKey  string `json:"session_key"`
		Assignments []struct {
			Partition int   `json:"partition"`
			Lease     int64 `json:"lease"`
		} `json:"assignments"`
	}
	if code := doJSON(t, "POST", nA.URL+"/v1/groups/billing/members", map[string]any{"topics": []string{"orders"}, "session_timeout_ms": 60000}, &join); code != http.StatusCreated || len(join.Assignments) != 3 {
		t.Fatalf("join: %d %+v", code, join)
	}
	committed := map[int]int64{}
	commits := 0
	consume := func() {
		for _, a := range join.Assignments {
			var f fetchAnswer
			url := fmt.Sprintf("%s/v1/topics/orders/partitions/%d/records?offset=%d&max_records=7", nA.URL, a.Partition, committed[a.Partition])
			if code := doJSON(t, "GET", url, nil, &f); code != http.StatusOK {
				t.Fatalf("fetch: %d", code)
			}
			if len(f.Records) == 0 {
				continue
			}
			body := map[string]any{"member_id": join.MemberID, "offsets": []map[string]any{{"topic": "orders", "partition": a.Partition, "offset": f.NextOffset, "lease": a.Lease}}}
			if code := memberJSON(t, "POST", nA.URL+"/v1/groups/billing/offsets", join.SessionKey, body, nil); code != http.StatusOK {
				t.Fatalf("commit: %d", code)
			}
			committed[a.Partition] = f.NextOffset
			commits++
		}
	}
	for done := false; !done; {
		select {
		case <-producing:
			done = true
		case <-time.After(30 * time.Millisecond):
			consume()
		}
	}
	if t.Failed() {
		return
	}
	consume()
	lastWrite := time.Now()
	t.Logf("%d records acknowledged, %d commits, committed offsets %v", len(want), commits, committed)

	// Wait for a checkpoint taken after the last write, and for the replica
	// to be in sync with a checkpoint at least that new.
	var status drStatus
	deadline := time.Now().Add(60 * time.Second)
	for {
		stdout, stderr, err := runMamba(t, "dr", "status", "--source", urlA, "--target", urlB, "-o", "json")
		if err != nil {
			t.Fatalf("dr status: %v\n%s", err, stderr)
		}
		status = drStatus{}
		if err := json.Unmarshal([]byte(stdout), &status); err != nil {
			t.Fatalf("dr status -o json: %v\n%s", err, stdout)
		}
		if status.InSync && status.Target.NewestCheckpointTime != nil && status.Target.NewestCheckpointTime.After(lastWrite) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("replica not in sync with a checkpoint after the last write within 60s:\n%s", stdout)
		}
		time.Sleep(100 * time.Millisecond)
	}
	text, _, err := runMamba(t, "dr", "status", "--source", urlA, "--target", urlB)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("mamba dr status:\n%s", text)
	if status.Source.Chunks == 0 || status.Source.NewestChunk != status.Target.NewestChunk {
		t.Fatalf("in sync but newest chunks differ: %+v", status)
	}
	for _, r := range status.Replication {
		if r.Status != "COMPLETED" {
			t.Logf("replication status of %s: %s", r.Key, r.Status)
		}
	}
	if len(status.Replication) == 0 {
		t.Errorf("dr status reported no replication status from MinIO")
	}

	// Region A dies.
	nA.Kill()
	rA.Kill()
	mA.Kill()

	start := time.Now()
	stdout, stderr, err := runMamba(t, "dr", "failover", "--bucket", urlB, "--redis", "redis://"+rB.Addr+"/0")
	if err != nil {
		t.Fatalf("dr failover: %v\nstdout:\n%s\nstderr:\n%s", err, stdout, stderr)
	}
	wall := time.Since(start)
	t.Logf("mamba dr failover:\n%s%s", stderr, stdout)
	m := regexp.MustCompile(`restore took (\S+)`).FindStringSubmatch(stdout)
	if m == nil || !strings.Contains(stdout, "mamba serve --bucket") || !strings.Contains(stdout, bucketB) {
		t.Fatalf("dr failover output lacks the restore time or the serve command:\n%s", stdout)
	}
	t.Logf("RECOVERY TIME: restore took %s (dr failover command %v) for %d chunks", m[1], wall.Round(time.Millisecond), status.Target.Chunks)

	// Region B serves.
	nB := testserver.StartMamba(t, mB, rB, bucketB, "node-b")
	seen := map[string]bool{}
	read := 0
	for p := range 3 {
		for i, rec := range fetchBinary(t, nB.URL, p) {
			key := [2]int64{int64(p), rec.Offset}
			if rec.Offset != int64(i) || want[key] != string(rec.Value) {
				t.Fatalf("region B: partition %d offset %d (record %d) = %q, acknowledged %q", p, rec.Offset, i, rec.Value, want[key])
			}
			if seen[string(rec.Value)] {
				t.Fatalf("region B: %q read twice", rec.Value)
			}
			seen[string(rec.Value)] = true
			read++
		}
	}
	if read != len(want) {
		t.Fatalf("region B holds %d records, %d were acknowledged in region A", read, len(want))
	}
	var group struct {
		Offsets []struct {
			Partition       int   `json:"partition"`
			CommittedOffset int64 `json:"committed_offset"`
		} `json:"offsets"`
	}
	if code := doJSON(t, "GET", nB.URL+"/v1/groups/billing", nil, &group); code != http.StatusOK {
		t.Fatalf("describe group in region B: %d", code)
	}
	if len(group.Offsets) != 3 {
		t.Fatalf("region B group offsets: %+v", group.Offsets)
	}
	for _, o := range group.Offsets {
		if o.CommittedOffset != committed[o.Partition] {
			t.Errorf("region B: group billing partition %d committed %d, region A had %d", o.Partition, o.CommittedOffset, committed[o.Partition])
		}
	}

	// The restore came from the checkpoint the replica held.
	store, err := storeurl.Open(t.Context(), urlB)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Stat(t.Context(), status.Target.NewestCheckpoint); err != nil {
		t.Fatalf("replica checkpoint %s: %v", status.Target.NewestCheckpoint, err)
	}
	if !strings.Contains(stdout, bucket.CheckpointPrefix) {
		t.Errorf("failover did not load a checkpoint:\n%s", stdout)
	}
}

func TestDRCommandErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"dr", "status"}, "--source and --target"},
		{[]string{"dr", "status", "--source", "mem://", "--target", "mem://", "-o", "yaml"}, "want text or json"},
		{[]string{"dr", "failover"}, "--bucket and --redis"},
	} {
		if _, _, err := runMamba(t, tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err = %v, want %q", tc.args, err, tc.want)
		}
	}
	// Two empty buckets are in sync.
	dir1, dir2 := t.TempDir(), t.TempDir()
	stdout, _, err := runMamba(t, "dr", "status", "--source", "file://"+dir1, "--target", "file://"+dir2)
	if err != nil || !strings.Contains(stdout, "status:      in sync") {
		t.Fatalf("dr status of empty buckets: %v\n%s", err, stdout)
	}
	if stdout, _, err := runMamba(t, "dr", "status", "--source", "file://"+dir1, "--target", "file://"+dir2, "-o", "json", "--fail-behind"); err != nil || !strings.Contains(stdout, `"in_sync": true`) {
		t.Fatalf("dr status -o json: %v\n%s", err, stdout)
	}
}
