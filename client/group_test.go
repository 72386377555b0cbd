package client_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mambamq/mamba/client"
)

// callbacks records the OnAssigned and OnRevoked calls of a consumer.
type callbacks struct {
	mu       sync.Mutex
	assigned []client.TopicPartition
	revoked  []client.TopicPartition
	log      []string
}

func (cb *callbacks) opts() []client.GroupOpt {
	return []client.GroupOpt{
		client.WithOnAssigned(func(tps []client.TopicPartition) {
			cb.mu.Lock()
			defer cb.mu.Unlock()
			cb.assigned = append(cb.assigned, tps...)
			cb.log = append(cb.log, "assigned "+tpsString(tps))
		}),
		client.WithOnRevoked(func(tps []client.TopicPartition) {
			cb.mu.Lock()
			defer cb.mu.Unlock()
			cb.revoked = append(cb.revoked, tps...)
			cb.log = append(cb.log, "revoked "+tpsString(tps))
		}),
	}
}

func (cb *callbacks) counts() (assigned, revoked int) {
	cb.mu.Lock()
	defer cb.mu.Unlock()
	return len(cb.assigned), len(cb.revoked)
}

func tpsString(tps []client.TopicPartition) string {
	s := make([]string, len(tps))
	for i, tp := range tps {
		s[i] = tp.String()
	}
	slices.Sort(s)
	return "[" + strings.Join(s, ",") + "]"
}

// fetchUntil calls Fetch until cond holds, failing the test after a
// minute. It returns every record fetched.
func fetchUntil(t *testing.T, g *client.GroupConsumer, cond func(got []client.ConsumedRecord) bool) []client.ConsumedRecord {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	var got []client.ConsumedRecord
	for !cond(got) {
		recs, err := g.Fetch(ctx)
		if err != nil {
			t.Fatalf("fetch: %v", err)
		}
		got = append(got, recs...)
	}
	return got
}

func newGroupConsumer(t *testing.T, c *client.Client, group string, topics []string, opts ...client.GroupOpt) *client.GroupConsumer {
	t.Helper()
	g, err := c.NewGroupConsumer(group, topics, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close(context.Background()) })
	return g
}

// A member reads everything, commits and leaves; the next member starts
// from the committed offsets and reads only what came after.
func TestGroupConsumerCommitAndResume(t *testing.T) {
	node := startNode(t)
	c := newClient(t, node.URL)
	ctx := t.Context()
	topic := createTopic(t, c, 2)
	p, err := c.NewProducer()
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(ctx)
	produceValues(t, p, topic, 0, 0, 10)
	produceValues(t, p, topic, 1, 10, 20)

	var cb callbacks
	a := newGroupConsumer(t, c, "billing", []string{topic}, append(cb.opts(), client.WithMaxWait(200*time.Millisecond))...)
	got := fetchUntil(t, a, func(got []client.ConsumedRecord) bool { return len(got) >= 20 })
	if len(got) != 20 {
		t.Fatalf("read %d records, want 20", len(got))
	}
	seen := map[string]bool{}
	for _, r := range got {
		if seen[string(r.Value)] {
			t.Fatalf("%s read twice", r.Value)
		}
		seen[string(r.Value)] = true
	}
	if n, _ := cb.counts(); n != 2 {
		t.Fatalf("OnAssigned got %d partitions, want 2 (%v)", n, cb.log)
	}
	if err := a.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	member := a.MemberID()
	d, err := c.DescribeGroup(ctx, "billing")
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Members) != 1 || d.Members[0].MemberID != member || len(d.Members[0].Assignments) != 2 || d.Members[0].SessionTimeout != client.DefaultSessionTimeout {
		t.Fatalf("describe group: %+v", d)
	}
	for _, o := range d.Offsets {
		if o.CommittedOffset != 10 || o.Lag != 0 {
			t.Fatalf("offset of %v: %+v, want committed 10 lag 0", o.TopicPartition, o)
		}
	}
	if err := a.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if _, r := cb.counts(); r != 2 {
		t.Fatalf("OnRevoked got %d partitions on Close, want 2 (%v)", r, cb.log)
	}
	if _, err := a.Fetch(ctx); !errors.Is(err, client.ErrClosed) {
		t.Fatalf("Fetch after Close: %v, want ErrClosed", err)
	}
	if groups, err := c.ListGroups(ctx); err != nil || !slices.Contains(groups, "billing") {
		t.Fatalf("list groups: %v %v", groups, err)
	}

	produceValues(t, p, topic, 0, 20, 25)
	b := newGroupConsumer(t, c, "billing", []string{topic}, client.WithMaxWait(200*time.Millisecond))
	got = fetchUntil(t, b, func(got []client.ConsumedRecord) bool { return len(got) >= 5 })
	for i, r := range got {
		if string(r.Value) != "v"+strconv.Itoa(20+i) || r.Offset != int64(10+i) {
			t.Fatalf("after resume, record %d: %s at %d", i, r.Value, r.Offset)
		}
	}
	if b.MemberID() == member {
		t.Fatal("the second consumer has the first one's member id")
	}
	missing := newGroupConsumer(t, c, "billing", []string{"no-such-topic"})
	if _, err := missing.Fetch(ctx); !errors.Is(err, client.ErrTopicNotFound) {
		t.Fatalf("join for a missing topic: %v, want ErrTopicNotFound", err)
	}
	if _, err := c.DescribeGroup(ctx, "nobody"); !errors.Is(err, client.ErrGroupNotFound) {
		t.Fatalf("describe unknown group: %v, want ErrGroupNotFound", err)
	}
}

// A second member gets half the partitions only once the first released
// them: the first learns at its heartbeat that two are revoking, stops
// reading them, and releases them at its next Fetch, after the caller
// committed; the second reads them from the committed offsets.
func TestGroupConsumerCooperativeHandOver(t *testing.T) {
	c, topic, p := startWithTopic(t, 4)
	ctx := t.Context()
	for part := range int32(4) {
		produceValues(t, p, topic, part, 0, 10)
	}

	var cbA callbacks
	a := newGroupConsumer(t, c, "g", []string{topic}, append(cbA.opts(), client.WithHeartbeatInterval(100*time.Millisecond),
		client.WithMaxWait(100*time.Millisecond))...)
	fetchUntil(t, a, func(got []client.ConsumedRecord) bool { return len(got) == 40 })
	if err := a.Commit(ctx); err != nil {
		t.Fatal(err)
	}

	// b heartbeats every 10 s, but sooner while it waits for partitions.
	var cbB callbacks
	b := newGroupConsumer(t, c, "g", []string{topic}, append(cbB.opts(), client.WithSessionTimeout(30*time.Second),
		client.WithMaxWait(100*time.Millisecond))...)
	joined := time.Now()
	if recs, err := b.Fetch(ctx); err != nil || len(recs) != 0 {
		t.Fatalf("b's first fetch: %v, %v", recs, err)
	}
	// b joined while a held every partition: b gets nothing until a
	// released its share (b learns of it at its own next heartbeat).
	if got := b.Assigned(); len(got) != 0 {
		t.Fatalf("b holds %v before a released anything", got)
	}
	deadline := time.Now().Add(time.Minute)
	for len(b.Assigned()) != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("b holds %v after a minute; a holds %v", b.Assigned(), a.Assigned())
		}
		for _, g := range []*client.GroupConsumer{a, b} {
			if recs, err := g.Fetch(ctx); err != nil || len(recs) != 0 {
				t.Fatalf("fetch with nothing left: %v, %v", recs, err)
			}
		}
	}
	if took := time.Since(joined); took > 5*time.Second {
		t.Fatalf("b got its partitions %v after joining; a waiting member should not wait for its 10 s heartbeat", took)
	}
	aParts, bParts := a.Assigned(), b.Assigned()
	if len(aParts) != 2 {
		t.Fatalf("a holds %v, want 2 partitions", aParts)
	}
	for _, tp := range aParts {
		if slices.Contains(bParts, tp) {
			t.Fatalf("a and b both hold %v", tp)
		}
	}
	if as, rs := cbA.counts(); as != 4 || rs != 2 {
		t.Fatalf("a's callbacks: %v", cbA.log)
	}
	if as, rs := cbB.counts(); as != 2 || rs != 0 {
		t.Fatalf("b's callbacks: %v", cbB.log)
	}
	// b continues from a's committed offsets: it reads only new records.
	for _, tp := range bParts {
		produceValues(t, p, topic, tp.Partition, 10, 12)
	}
	got := fetchUntil(t, b, func(got []client.ConsumedRecord) bool { return len(got) == 4 })
	for _, r := range got {
		if r.Offset < 10 || !slices.Contains(bParts, client.TopicPartition{Topic: r.Topic, Partition: r.Partition}) {
			t.Fatalf("b read %v/%d@%d", r.Topic, r.Partition, r.Offset)
		}
	}
	d, err := c.DescribeGroup(ctx, "g")
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Members) != 2 {
		t.Fatalf("members: %+v", d.Members)
	}
	for _, o := range d.Offsets {
		if o.CommittedOffset != 10 {
			t.Fatalf("offset of %v: %d, want a's commit, 10", o.TopicPartition, o.CommittedOffset)
		}
	}
}

// A member removed behind its back (its heartbeat is then answered 404
// member_not_found) loses every partition and joins again as a new
// member, without the caller doing anything.
func TestGroupConsumerRejoinsWhenGone(t *testing.T) {
	node := startNode(t)
	// The member's session key, as its requests carry it, for removing it
	// behind its back.
	var keyMu sync.Mutex
	var key string
	c := newClient(t, node.URL, client.WithRequestHook(func(r *http.Request) error {
		if k := r.Header.Get("Mamba-Session-Key"); k != "" {
			keyMu.Lock()
			key = k
			keyMu.Unlock()
		}
		return nil
	}))
	ctx := t.Context()
	topic := createTopic(t, c, 2)
	p, err := c.NewProducer()
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(ctx)
	produceValues(t, p, topic, 0, 0, 3)

	var cb callbacks
	g := newGroupConsumer(t, c, "rejoin", []string{topic}, append(cb.opts(),
		client.WithSessionTimeout(time.Second), client.WithMaxWait(100*time.Millisecond))...)
	fetchUntil(t, g, func(got []client.ConsumedRecord) bool { return len(got) == 3 })
	if err := g.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	first := g.MemberID()
	req, _ := http.NewRequest(http.MethodDelete, node.URL+"/v1/groups/rejoin/members/"+first, nil)
	keyMu.Lock()
	req.Header.Set("Mamba-Session-Key", key)
	keyMu.Unlock()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("remove member: %d", resp.StatusCode)
	}
	produceValues(t, p, topic, 0, 3, 5)
	got := fetchUntil(t, g, func(got []client.ConsumedRecord) bool {
		return g.MemberID() != first && g.MemberID() != "" && len(got) >= 2 && len(g.Assigned()) == 2
	})
	// The new member starts from the committed offsets: only the new
	// records, though the old member may have read them first.
	for _, r := range got {
		if r.Offset < 3 {
			t.Fatalf("read %v again after rejoining", r)
		}
	}
	// Callbacks: all revoked, then all assigned again.
	fetchUntil(t, g, func([]client.ConsumedRecord) bool { as, rs := cb.counts(); return as == 4 && rs == 2 })
	cb.mu.Lock()
	log := slices.Clone(cb.log)
	cb.mu.Unlock()
	if len(log) != 3 || log[1] != "revoked "+tpsString([]client.TopicPartition{{topic, 0}, {topic, 1}}) {
		t.Fatalf("callbacks: %v", log)
	}
}

// Records with auto-commit: what the loop saw is committed (on Close at
// the latest), and WithStartAtNewest skips what was there before.
func TestGroupConsumerRecordsAutoCommit(t *testing.T) {
	node := startNode(t)
	c := newClient(t, node.URL)
	ctx := t.Context()
	topic := createTopic(t, c, 1)
	p, err := c.NewProducer()
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(ctx)
	produceValues(t, p, topic, 0, 0, 10)

	g := newGroupConsumer(t, c, "auto", []string{topic}, client.WithAutoCommit(50*time.Millisecond), client.WithMaxWait(100*time.Millisecond))
	rctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	n := 0
	for rec, err := range g.Records(rctx) {
		if err != nil {
			t.Fatal(err)
		}
		if rec.Offset != int64(n) {
			t.Fatalf("record %d at offset %d", n, rec.Offset)
		}
		if n++; n == 6 {
			break
		}
	}
	if err := g.Close(ctx); err != nil {
		t.Fatal(err)
	}
	d, err := c.DescribeGroup(ctx, "auto")
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Offsets) != 1 || d.Offsets[0].CommittedOffset != 6 || d.Offsets[0].Lag != 4 {
		t.Fatalf("offsets after reading 6 of 10: %+v", d.Offsets)
	}

	// A new group that starts at the newest offset sees only records
	// produced after it joined. When exactly its partition's start was
	// resolved is unknown, so records are produced until one arrives.
	newest := newGroupConsumer(t, c, "tail", []string{topic}, client.WithStartAtNewest(), client.WithMaxWait(100*time.Millisecond))
	next := 10
	got := fetchUntil(t, newest, func(got []client.ConsumedRecord) bool {
		if len(got) == 0 {
			produceValues(t, p, topic, 0, next, next+1)
			next++
		}
		return len(got) > 0
	})
	for i, r := range got {
		if r.Offset < 10 || i > 0 && r.Offset != got[i-1].Offset+1 {
			t.Fatalf("starting at the newest offset, read offset %d after %v", r.Offset, got[:i])
		}
	}
}
