package ingest

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/mambamq/mamba/metadata"
)

func TestGroupsThroughNode(t *testing.T) {
	c := newCluster(t)
	n := c.node(Config{NodeID: "groups"}, nil)
	ctx := t.Context()
	if _, err := n.CreateTopic(ctx, TopicConfig{Name: "orders", Partitions: 12}); err != nil {
		t.Fatal(err)
	}
	for p := range 12 {
		if _, err := n.Produce(ctx, "orders", []ProduceRecord{{Value: []byte("a"), Partition: int32(p)}, {Value: []byte("b"), Partition: int32(p)}}, ProduceOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	var members []JoinedGroup
	for range 3 {
		j, err := n.Join(ctx, JoinGroupRequest{Group: "billing", Topics: []string{"orders"}, Session: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		members = append(members, j)
	}
	// The first member releases what the later joins revoked; the others
	// get it then.
	firstAs, err := n.Heartbeat(ctx, "billing", members[0].Member, members[0].SessionKey, nil)
	if err != nil {
		t.Fatal(err)
	}
	var release []metadata.TopicPartitionLease
	for _, a := range firstAs.Assignments {
		if a.Revoking {
			release = append(release, metadata.TopicPartitionLease{Topic: a.Topic, Partition: a.Partition, Lease: a.Lease})
		}
	}
	if len(release) != 8 || firstAs.Waiting {
		t.Fatalf("first member told to release %d partitions (want 8), waiting %v", len(release), firstAs.Waiting)
	}
	// The others wait for them, and are told so.
	if w, err := n.Heartbeat(ctx, "billing", members[1].Member, members[1].SessionKey, nil); err != nil || !w.Waiting || len(w.Assignments) != 0 {
		t.Fatalf("second member before the release: %+v, %v; want waiting with nothing", w, err)
	}
	if _, err := n.Heartbeat(ctx, "billing", members[0].Member, members[0].SessionKey, []metadata.TopicPartitionLease{{Topic: "", Partition: 0, Lease: 1}}); !errors.Is(err, ErrInvalidRequest) {
		t.Fatalf("release without a topic: err = %v", err)
	}
	if _, err := n.Heartbeat(ctx, "billing", members[0].Member, members[0].SessionKey, release); err != nil {
		t.Fatal(err)
	}
	held := map[string][]metadata.Assignment{}
	for _, j := range members {
		synced, err := n.Heartbeat(ctx, "billing", j.Member, j.SessionKey, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(synced.Assignments) != 4 || synced.Waiting {
			t.Fatalf("member holds %d partitions (want 4), waiting %v", len(synced.Assignments), synced.Waiting)
		}
		held[j.Member] = synced.Assignments
	}
	first := held[members[0].Member][0]
	if err := n.CommitOffsets(ctx, "billing", members[0].Member, members[0].SessionKey, []metadata.OffsetCommit{{Topic: "orders", Partition: first.Partition, Offset: 2, Lease: first.Lease}}); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []metadata.OffsetCommit{
		{Topic: "orders", Partition: first.Partition, Offset: 3, Lease: first.Lease},  // past the high watermark
		{Topic: "orders", Partition: first.Partition, Offset: -1, Lease: first.Lease}, // negative
		{Topic: "orders", Partition: 12, Offset: 0, Lease: first.Lease},               // no such partition
		{Topic: "orders", Partition: first.Partition, Offset: 1, Lease: 0},            // not a lease
		{Topic: "a}{b", Partition: 0, Offset: 0, Lease: first.Lease},                  // a name no topic has (a brace would change the key's hash tag)
		{Topic: "..", Partition: 0, Offset: 0, Lease: first.Lease},                    // a name no topic may have
	} {
		if err := n.CommitOffsets(ctx, "billing", members[0].Member, members[0].SessionKey, []metadata.OffsetCommit{bad}); !errors.Is(err, ErrInvalidRequest) {
			t.Errorf("commit %+v: err = %v, want ErrInvalidRequest", bad, err)
		}
	}
	if err := n.CommitOffsets(ctx, "billing", members[0].Member, members[0].SessionKey, []metadata.OffsetCommit{{Topic: "nope", Partition: 0, Offset: 0, Lease: 1}}); !errors.Is(err, ErrTopicNotFound) {
		t.Errorf("commit to an unknown topic: err = %v", err)
	}
	if _, err := n.CreateTopic(ctx, TopicConfig{Name: "huge", Partitions: metadata.MaxPartitions}); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Join(ctx, JoinGroupRequest{Group: "billing", Topics: []string{"orders", "huge"}}); !errors.Is(err, ErrInvalidRequest) || !strings.Contains(err.Error(), "partitions") {
		t.Errorf("join past the group's partition limit: err = %v, want ErrInvalidRequest naming partitions", err)
	}
	if _, err := n.Join(ctx, JoinGroupRequest{Group: "billing", Topics: []string{"nope"}}); !errors.Is(err, ErrTopicNotFound) {
		t.Errorf("join with an unknown topic: err = %v", err)
	}
	for _, session := range []time.Duration{time.Millisecond, time.Hour} {
		if _, err := n.Join(ctx, JoinGroupRequest{Group: "billing", Topics: []string{"orders"}, Session: session}); !errors.Is(err, ErrInvalidRequest) {
			t.Errorf("join with session %v: err = %v", session, err)
		}
	}
	desc, err := n.DescribeGroup(ctx, "billing")
	if err != nil {
		t.Fatal(err)
	}
	if len(desc.Members) != 3 || len(desc.Offsets) != 12 {
		t.Fatalf("describe: %d members, %d offsets", len(desc.Members), len(desc.Offsets))
	}
	var lag int64
	for _, o := range desc.Offsets {
		lag += o.Lag
		if o.Partition == first.Partition && (o.Committed != 2 || o.Lag != 0) {
			t.Fatalf("partition %d: %+v, want committed 2, lag 0", o.Partition, o)
		}
	}
	if lag != 22 {
		t.Fatalf("total lag %d, want 22 (2 records in each of 11 uncommitted partitions)", lag)
	}
	// A wrong, malformed or missing session key is refused, and the
	// member stays.
	other := members[1].SessionKey
	for _, c := range []struct {
		key  string
		want error
	}{{other, ErrSessionInvalid}, {"zz" + other[2:], ErrSessionInvalid}, {other + "00", ErrSessionInvalid}, {"", ErrInvalidRequest}} {
		if err := n.LeaveGroup(ctx, "billing", members[0].Member, c.key); !errors.Is(err, c.want) {
			t.Errorf("leave with key %q: err = %v, want %v", c.key, err, c.want)
		}
		if _, err := n.Heartbeat(ctx, "billing", members[0].Member, c.key, nil); !errors.Is(err, c.want) {
			t.Errorf("heartbeat with key %q: err = %v, want %v", c.key, err, c.want)
		}
		commit := []metadata.OffsetCommit{{Topic: "orders", Partition: first.Partition, Offset: 1, Lease: first.Lease}}
		if err := n.CommitOffsets(ctx, "billing", members[0].Member, c.key, commit); !errors.Is(err, c.want) {
			t.Errorf("commit with key %q: err = %v, want %v", c.key, err, c.want)
		}
	}
	// Another member's commit under the owner's lease is refused.
	commit := []metadata.OffsetCommit{{Topic: "orders", Partition: first.Partition, Offset: 1, Lease: first.Lease}}
	if err := n.CommitOffsets(ctx, "billing", members[1].Member, members[1].SessionKey, commit); !errors.Is(err, ErrLeaseLost) {
		t.Errorf("commit of another member's partition: err = %v, want ErrLeaseLost", err)
	}
	if err := n.LeaveGroup(ctx, "billing", members[0].Member, members[0].SessionKey); err != nil {
		t.Fatal(err)
	}
	if err := n.CommitOffsets(ctx, "billing", members[0].Member, members[0].SessionKey, []metadata.OffsetCommit{{Topic: "orders", Partition: first.Partition, Offset: 1, Lease: first.Lease}}); !errors.Is(err, ErrMemberNotFound) {
		t.Fatalf("commit after leaving: err = %v, want ErrMemberNotFound", err)
	}
	if _, err := n.Heartbeat(ctx, "billing", members[0].Member, members[0].SessionKey, nil); !errors.Is(err, ErrMemberNotFound) {
		t.Fatalf("heartbeat after leaving: err = %v", err)
	}
	if _, err := n.DescribeGroup(ctx, "never"); !errors.Is(err, ErrGroupNotFound) {
		t.Fatalf("describe unknown group: err = %v", err)
	}
}
