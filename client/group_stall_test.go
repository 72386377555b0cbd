package client_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mambamq/mamba/client"
)

// Three members share twelve partitions, four each. One stops
// heartbeating (its heartbeats fail, as in a network partition or a long
// pause): within its session timeout its partitions move to the other two,
// its late commit is refused (it is no longer a member), every record is processed at
// least once, and the group's committed offsets end at the high watermarks.
func TestGroupMemberStallsPartitionsMove(t *testing.T) {
	node := startNode(t)
	c := newClient(t, node.URL)
	ctx := t.Context()
	topic := createTopic(t, c, 12)
	p, err := c.NewProducer()
	if err != nil {
		t.Fatal(err)
	}
	for i := range 1200 {
		part := int32(i % 12)
		p.ProduceAsync(client.Record{Topic: topic, Partition: &part, Value: fmt.Appendf(nil, "r%d", i)})
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}

	const session = 2 * time.Second
	const heartbeat = session / 3
	var stalled atomic.Bool
	var zombieKey atomic.Value // the zombie's session key, from its requests
	zombieClient := newClient(t, node.URL, client.WithRequestHook(func(r *http.Request) error {
		if k := r.Header.Get("Mamba-Session-Key"); k != "" {
			zombieKey.Store(k)
		}
		if stalled.Load() && strings.HasSuffix(r.URL.Path, "/heartbeat") {
			return errors.New("heartbeat dropped by the test")
		}
		return nil
	}))

	var mu sync.Mutex
	processed := map[string]int{}
	consume := func(ctx context.Context, gc *client.GroupConsumer, stop *atomic.Bool) {
		for ctx.Err() == nil && (stop == nil || !stop.Load()) {
			recs, err := gc.Fetch(ctx)
			if err != nil {
				continue // lease lost or transient: the consumer has adjusted
			}
			mu.Lock()
			for _, r := range recs {
				processed[fmt.Sprintf("%d/%d", r.Partition, r.Offset)]++
			}
			mu.Unlock()
			_ = gc.Commit(ctx)
		}
	}
	var members []*client.GroupConsumer
	for _, cl := range []*client.Client{c, c, zombieClient} {
		gc, err := cl.NewGroupConsumer("billing", []string{topic}, client.WithSessionTimeout(session),
			client.WithHeartbeatInterval(heartbeat), client.WithMaxWait(300*time.Millisecond), client.WithMaxRecords(20))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = gc.Close(context.Background()) })
		members = append(members, gc)
	}
	runCtx, stopAll := context.WithCancel(ctx)
	defer stopAll()
	var zombieStop atomic.Bool
	var wg sync.WaitGroup
	for i, gc := range members {
		var stop *atomic.Bool
		if i == 2 {
			stop = &zombieStop
		}
		wg.Go(func() { consume(runCtx, gc, stop) })
	}

	held := func(d client.GroupDescription) map[string][]client.Assignment {
		out := map[string][]client.Assignment{}
		for _, m := range d.Members {
			out[m.MemberID] = m.Assignments
		}
		return out
	}
	waitFor := func(what string, limit time.Duration, cond func(client.GroupDescription) bool) (client.GroupDescription, time.Duration) {
		start := time.Now()
		for {
			d, err := c.DescribeGroup(ctx, "billing")
			if err == nil && cond(d) {
				return d, time.Since(start)
			}
			if time.Since(start) > limit {
				t.Fatalf("%s: not after %v (last: %+v, %v)", what, limit, d, err)
			}
			time.Sleep(20 * time.Millisecond) // polling the group's state, bounded by limit
		}
	}
	d, _ := waitFor("three members with four partitions each", 30*time.Second, func(d client.GroupDescription) bool {
		h := held(d)
		if len(h) != 3 {
			return false
		}
		for _, as := range h {
			if len(as) != 4 {
				return false
			}
		}
		return true
	})
	zombieID := members[2].MemberID()
	if n := len(held(d)[zombieID]); n != 4 {
		t.Fatalf("the member to stall holds %d partitions", n)
	}
	// Its leases, as its own heartbeat answer gives them (describe does
	// not show leases).
	key, _ := zombieKey.Load().(string)
	hbReq, _ := http.NewRequestWithContext(ctx, http.MethodPost, node.URL+"/v1/groups/billing/members/"+zombieID+"/heartbeat", nil)
	hbReq.Header.Set("Mamba-Session-Key", key)
	hb, err := http.DefaultClient.Do(hbReq)
	if err != nil {
		t.Fatal(err)
	}
	var hbAnswer struct {
		Assignments []struct {
			Partition int32 `json:"partition"`
			Lease     int64 `json:"lease"`
		} `json:"assignments"`
	}
	err = json.NewDecoder(hb.Body).Decode(&hbAnswer)
	hb.Body.Close()
	if err != nil || hb.StatusCode != http.StatusOK || len(hbAnswer.Assignments) == 0 || hbAnswer.Assignments[0].Lease <= 0 {
		t.Fatalf("the member's heartbeat: %d %+v %v", hb.StatusCode, hbAnswer, err)
	}
	late := hbAnswer.Assignments[0]

	// The stall: heartbeats stop getting through, and the member stops
	// processing, as a paused process would.
	zombieStop.Store(true)
	stalled.Store(true)
	_, moved := waitFor("the stalled member's partitions moved to the other two", 30*time.Second, func(d client.GroupDescription) bool {
		h := held(d)
		if len(h) != 2 {
			return false
		}
		for id, as := range h {
			if id == zombieID || len(as) != 6 {
				return false
			}
		}
		return true
	})
	t.Logf("partitions moved %v after the stall (session timeout %v, heartbeat interval %v)", moved, session, heartbeat)
	if moved > session+heartbeat+500*time.Millisecond {
		t.Fatalf("partitions moved %v after the stall, want within the session timeout %v plus one heartbeat interval", moved, session)
	}

	// The stalled member wakes up and commits with its key and the lease
	// it held: the group refuses (the member expired), and its position
	// does not move.
	before, err := c.DescribeGroup(ctx, "billing")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(map[string]any{"member_id": zombieID, "offsets": []map[string]any{{
		"topic": topic, "partition": late.Partition, "offset": 100, "lease": late.Lease,
	}}})
	commitReq, _ := http.NewRequestWithContext(ctx, http.MethodPost, node.URL+"/v1/groups/billing/offsets", bytes.NewReader(body))
	commitReq.Header.Set("Content-Type", "application/json")
	commitReq.Header.Set("Mamba-Session-Key", key)
	resp, err := http.DefaultClient.Do(commitReq)
	if err != nil {
		t.Fatal(err)
	}
	var eb struct {
		Error struct{ Code string } `json:"error"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&eb)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound || eb.Error.Code != "member_not_found" {
		t.Fatalf("late commit with the old lease = %d %q, want 404 member_not_found", resp.StatusCode, eb.Error.Code)
	}
	if err := members[2].Commit(ctx); err != nil && !errors.Is(err, client.ErrLeaseLost) {
		t.Fatalf("the stalled member's own Commit: %v, want nil (it let go) or ErrLeaseLost", err)
	}
	after, err := c.DescribeGroup(ctx, "billing")
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range after.Offsets {
		if o.Partition != late.Partition {
			continue
		}
		for _, b := range before.Offsets {
			if b.Partition == late.Partition && o.CommittedOffset < b.CommittedOffset {
				t.Fatalf("partition %d went back from %d to %d after a refused commit", o.Partition, b.CommittedOffset, o.CommittedOffset)
			}
		}
	}

	// The two live members finish the topic.
	waitFor("committed offsets at the high watermarks", 60*time.Second, func(d client.GroupDescription) bool {
		if len(d.Offsets) != 12 {
			return false
		}
		for _, o := range d.Offsets {
			if o.CommittedOffset != o.HighWatermark || o.HighWatermark != 100 {
				return false
			}
		}
		return true
	})
	stopAll()
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	for part := range 12 {
		for off := range 100 {
			if processed[fmt.Sprintf("%d/%d", part, off)] == 0 {
				t.Fatalf("record %d/%d was never processed", part, off)
			}
		}
	}
	again := 0
	for _, n := range processed {
		again += n - 1
	}
	t.Logf("1200 records processed; %d processed more than once (at least once delivery across the move)", again)
}
