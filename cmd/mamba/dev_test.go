package main

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mambamq/mamba/internal/tooling/testserver"
)

// newestCheckpointMS returns the time of the newest checkpoint file in a
// dev data directory, 0 when there is none.
func newestCheckpointMS(t *testing.T, dir string) int64 {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(dir, "bucket", "checkpoints"))
	if err != nil {
		return 0
	}
	var newest int64
	for _, e := range entries {
		ms, err := strconv.ParseInt(strings.SplitN(e.Name(), "-", 2)[0], 10, 64)
		if err == nil {
			newest = max(newest, ms)
		}
	}
	return newest
}

type groupAnswer struct {
	Offsets []struct {
		Partition       int32 `json:"partition"`
		CommittedOffset int64 `json:"committed_offset"`
	} `json:"offsets"`
}

// mamba dev keeps topics, records and group offsets across a kill -9 and a
// clean restart, with no servers but itself.
func TestDevSurvivesRestarts(t *testing.T) {
	dir := t.TempDir()
	dev := testserver.StartMambaDev(t, dir)
	if code := doJSON(t, "POST", dev.URL+"/v1/topics", map[string]any{"name": "orders", "partitions": 2}, nil); code != http.StatusCreated {
		t.Fatalf("create: %d", code)
	}
	var acks []produceAnswer
	for i := range 10 {
		var ans produceAnswer
		body := map[string]any{"records": []map[string]any{{"value": fmt.Sprintf("v%d", i), "partition": i % 2}}}
		if code := doJSON(t, "POST", dev.URL+"/v1/topics/orders/records", body, &ans); code != http.StatusOK {
			t.Fatalf("produce: %d", code)
		}
		acks = append(acks, ans)
	}
	var join struct {
		MemberID    string `json:"member_id"`
		SessionKey  string `json:"session_key"`
		Assignments []struct {
			Partition int32 `json:"partition"`
			Lease     int64 `json:"lease"`
		} `json:"assignments"`
	}
	if code := doJSON(t, "POST", dev.URL+"/v1/groups/billing/members", map[string]any{"topics": []string{"orders"}}, &join); code != http.StatusCreated {
		t.Fatalf("join: %d", code)
	}
	var offsets []map[string]any
	for _, a := range join.Assignments {
		offsets = append(offsets, map[string]any{"topic": "orders", "partition": a.Partition, "offset": 3, "lease": a.Lease})
	}
	committedAt := time.Now().UnixMilli()
	if code := memberJSON(t, "POST", dev.URL+"/v1/groups/billing/offsets", join.SessionKey, map[string]any{"member_id": join.MemberID, "offsets": offsets}, nil); code != http.StatusOK {
		t.Fatalf("commit: %d", code)
	}
	// Group offsets reach the directory with the next checkpoint.
	for deadline := time.Now().Add(30 * time.Second); newestCheckpointMS(t, dir) <= committedAt; {
		if time.Now().After(deadline) {
			t.Fatal("no checkpoint after the commit within 30s")
		}
		time.Sleep(50 * time.Millisecond) // polling the directory, bounded
	}

	check := func(stage string) {
		t.Helper()
		for i, ans := range acks {
			var got fetchAnswer
			url := fmt.Sprintf("%s/v1/topics/orders/partitions/%d/records?offset=%d&max_records=1", dev.URL, ans.Records[0].Partition, ans.Records[0].Offset)
			if code := doJSON(t, "GET", url, nil, &got); code != http.StatusOK || len(got.Records) != 1 || got.Records[0].Value != fmt.Sprintf("v%d", i) {
				t.Fatalf("%s: record %d at %+v: %d %+v", stage, i, ans.Records[0], code, got)
			}
		}
		var g groupAnswer
		if code := doJSON(t, "GET", dev.URL+"/v1/groups/billing", nil, &g); code != http.StatusOK || len(g.Offsets) != 2 {
			t.Fatalf("%s: group: %d %+v", stage, code, g)
		}
		for _, o := range g.Offsets {
			if o.CommittedOffset != 3 {
				t.Fatalf("%s: partition %d committed offset %d, want 3", stage, o.Partition, o.CommittedOffset)
			}
		}
	}
	dev.Kill()
	if err := dev.Start(); err != nil {
		t.Fatal(err)
	}
	check("after kill -9")
	dev.Stop()
	if err := dev.Start(); err != nil {
		t.Fatal(err)
	}
	check("after a clean restart")
	// New records continue the offsets.
	var ans produceAnswer
	if code := doJSON(t, "POST", dev.URL+"/v1/topics/orders/records", map[string]any{"records": []map[string]any{{"value": "after", "partition": 0}}}, &ans); code != http.StatusOK || ans.Records[0].Offset != 5 {
		t.Fatalf("produce after restarts: %d %+v, want offset 5", code, ans)
	}
}

func TestDevDirectoryLock(t *testing.T) {
	dir := t.TempDir()
	unlock, err := lockDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lockDir(dir); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second lock of %s: err = %v, want in use", dir, err)
	}
	unlock()
	again, err := lockDir(dir)
	if err != nil {
		t.Fatalf("lock after unlock: %v", err)
	}
	again()
}
