package tiering

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"

	"github.com/mambamq/mamba/internal/tooling/testserver"
	"github.com/mambamq/mamba/metadata"
)

// janitorStores returns a store on miniredis and one on a real
// redis-server, for the janitor tests to run on both.
func janitorStores(t *testing.T) map[string]func(*testing.T) *metadata.Store {
	return map[string]func(*testing.T) *metadata.Store{
		"miniredis": func(t *testing.T) *metadata.Store { s, _ := miniStore(t); return s },
		"redis-server": func(t *testing.T) *metadata.Store {
			r := testserver.StartRedis(t, testserver.RedisOptions{})
			rdb := redis.NewClient(&redis.Options{Addr: r.Addr})
			t.Cleanup(func() { rdb.Close() })
			return metadata.New(rdb, metadata.Options{})
		},
	}
}

// redisNow reads Redis's clock, by which the janitor measures a group's
// age.
func redisNow(t *testing.T, meta *metadata.Store) time.Time {
	t.Helper()
	now, err := meta.Now(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return now
}

// idleGroup joins a member to topics at joined, commits offset 0 of
// partition 0 of each topic and leaves at left.
func idleGroup(t *testing.T, meta *metadata.Store, group string, joined, left time.Time, topics ...metadata.Topic) {
	t.Helper()
	ctx := t.Context()
	as, err := meta.JoinGroup(ctx, group, "m", "key-of-m", topics, 10*time.Second, joined)
	if err != nil {
		t.Fatal(err)
	}
	var commits []metadata.OffsetCommit
	for _, a := range as {
		if a.Partition == 0 {
			commits = append(commits, metadata.OffsetCommit{Topic: a.Topic, Partition: 0, Offset: 0, Lease: a.Lease})
		}
	}
	if err := meta.CommitOffsets(ctx, group, "m", "key-of-m", commits, joined); err != nil {
		t.Fatal(err)
	}
	if err := meta.LeaveGroup(ctx, group, "m", "key-of-m", left); err != nil {
		t.Fatal(err)
	}
}

func TestGroupJanitorExpiresIdleGroupsAndOffsetsOfDeletedTopics(t *testing.T) {
	for name, start := range janitorStores(t) {
		t.Run(name, func(t *testing.T) {
			meta := start(t)
			ctx := t.Context()
			orders := metadata.Topic{Name: "orders", ID: "orders-id", Partitions: 2, CreatedMS: 1}
			gone := metadata.Topic{Name: "gone", ID: "gone-id", Partitions: 1, CreatedMS: 1}
			for _, tp := range []metadata.Topic{orders, gone} {
				if err := meta.CreateTopic(ctx, tp); err != nil {
					t.Fatal(err)
				}
			}
			now := redisNow(t, meta)
			idleGroup(t, meta, "old", now.Add(-8*24*time.Hour), now.Add(-8*24*time.Hour+time.Second), orders)
			idleGroup(t, meta, "recent", now.Add(-time.Hour), now.Add(-time.Hour), orders)
			idleGroup(t, meta, "mixed", now.Add(-time.Hour), now.Add(-time.Hour), orders, gone)
			// A live member keeps its group, idle or not.
			if _, err := meta.JoinGroup(ctx, "live", "m", "key-of-m", []metadata.Topic{orders}, 5*time.Minute, now.Add(-time.Minute)); err != nil {
				t.Fatal(err)
			}
			if err := meta.DeleteTopic(ctx, "gone"); err != nil {
				t.Fatal(err)
			}

			reg := prometheus.NewRegistry()
			jan, err := NewGroupJanitor(meta, GroupJanitorConfig{Retention: 7 * 24 * time.Hour, ScanCount: 1}, reg, nil)
			if err != nil {
				t.Fatal(err)
			}
			job, err := NewJob(JobConfig{Name: "groups", Holder: "a", Interval: time.Minute, LeaseTTL: 10 * time.Second}, meta, jan.Pass, reg, nil)
			if err != nil {
				t.Fatal(err)
			}
			for range 2 { // the second pass finds nothing more to do
				if ran, err := job.RunOnce(ctx); err != nil || !ran {
					t.Fatalf("pass: ran %v, %v", ran, err)
				}
				groups, err := meta.Groups(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if want := []string{"live", "mixed", "recent"}; !slices.Equal(groups, want) {
					t.Fatalf("groups after the pass = %v, want %v", groups, want)
				}
				if _, offs, err := meta.DescribeGroup(ctx, "old", now); err != nil || len(offs) != 0 {
					t.Fatalf("old group's offsets after expiry: %v, %v", offs, err)
				}
				_, offs, err := meta.DescribeGroup(ctx, "mixed", now)
				if err != nil {
					t.Fatal(err)
				}
				if len(offs) != 1 || offs[0].Topic != "orders" {
					t.Fatalf("mixed group's offsets = %+v, want only orders/0", offs)
				}
				if got := testutil.ToFloat64(jan.expired); got != 1 {
					t.Fatalf("mamba_groups_expired_total = %v, want 1", got)
				}
				if got := testutil.ToFloat64(jan.offsetsRemoved); got != 1 {
					t.Fatalf("mamba_group_offsets_removed_total = %v, want 1", got)
				}
			}
		})
	}
}

func TestGroupJanitorRetentionZeroKeepsGroups(t *testing.T) {
	meta, _ := miniStore(t)
	orders := metadata.Topic{Name: "orders", ID: "orders-id", Partitions: 1, CreatedMS: 1}
	if err := meta.CreateTopic(t.Context(), orders); err != nil {
		t.Fatal(err)
	}
	year := redisNow(t, meta).Add(-365 * 24 * time.Hour)
	idleGroup(t, meta, "old", year, year, orders)
	jan, err := NewGroupJanitor(meta, GroupJanitorConfig{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := jan.Pass(t.Context(), func() error { return nil }); err != nil {
		t.Fatal(err)
	}
	if groups, _ := meta.Groups(t.Context()); !slices.Equal(groups, []string{"old"}) {
		t.Fatalf("groups = %v, want old kept (retention 0 disables expiry)", groups)
	}
	if _, err := NewGroupJanitor(meta, GroupJanitorConfig{Retention: -time.Second}, nil, nil); err == nil {
		t.Fatal("negative retention accepted")
	}
}

// A pass whose lease is lost stops before its next step: it deletes no
// group after the failed renewal.
func TestGroupJanitorStopsWhenTheLeaseIsLost(t *testing.T) {
	meta, _ := miniStore(t)
	orders := metadata.Topic{Name: "orders", ID: "orders-id", Partitions: 1, CreatedMS: 1}
	if err := meta.CreateTopic(t.Context(), orders); err != nil {
		t.Fatal(err)
	}
	idle := redisNow(t, meta).Add(-2 * time.Hour)
	for _, g := range []string{"a", "b", "c"} {
		idleGroup(t, meta, g, idle, idle, orders)
	}
	jan, err := NewGroupJanitor(meta, GroupJanitorConfig{Retention: time.Hour, ScanCount: 1}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	lost := errors.New("lease lost")
	renewals := 0
	err = jan.Pass(t.Context(), func() error {
		renewals++
		if renewals > 1 {
			return lost
		}
		return nil
	})
	if !errors.Is(err, lost) {
		t.Fatalf("pass: %v, want the renewal's error", err)
	}
	groups, _ := meta.Groups(t.Context())
	if len(groups) != 2 || testutil.ToFloat64(jan.expired) != 1 {
		t.Fatalf("groups left %v, expired %v; want one group expired before the lease was lost", groups, testutil.ToFloat64(jan.expired))
	}
	// The next holder finishes the work. (With a page of one group,
	// miniredis's SSCAN skips a name when one before it is removed, which
	// Redis does not; a page of 100 holds them all.)
	jan.cfg.ScanCount = 100
	if err := jan.Pass(context.Background(), func() error { return nil }); err != nil {
		t.Fatal(err)
	}
	if groups, _ := meta.Groups(t.Context()); len(groups) != 0 {
		t.Fatalf("groups left after a full pass: %v", groups)
	}
}

// TestGroupJanitorKeepsOffsetsOfTopicCreatedAgain deletes a topic two
// groups committed to, runs a pass, and between the two groups' sweeps
// creates the topic again and commits to it in the second group: that
// offset is kept (a topic's absence is not remembered across groups).
func TestGroupJanitorKeepsOffsetsOfTopicCreatedAgain(t *testing.T) {
	for name, start := range janitorStores(t) {
		t.Run(name, func(t *testing.T) {
			meta := start(t)
			ctx := t.Context()
			topic := metadata.Topic{Name: "orders", ID: "orders-1", Partitions: 1, CreatedMS: 1}
			if err := meta.CreateTopic(ctx, topic); err != nil {
				t.Fatal(err)
			}
			now := redisNow(t, meta)
			for _, g := range []string{"a", "b"} {
				idleGroup(t, meta, g, now, now, topic)
			}
			if err := meta.DeleteTopic(ctx, "orders"); err != nil {
				t.Fatal(err)
			}
			offsets := func(group string) []metadata.GroupOffset {
				t.Helper()
				_, offs, err := meta.DescribeGroup(ctx, group, time.Now())
				if err != nil {
					t.Fatal(err)
				}
				return offs
			}
			jan, err := NewGroupJanitor(meta, GroupJanitorConfig{Retention: time.Hour}, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			renewals, second := 0, ""
			err = jan.Pass(ctx, func() error {
				if renewals++; renewals != 2 { // 2: before the second group
					return nil
				}
				second = "b"
				if len(offsets("b")) == 0 {
					second = "a"
				}
				again := metadata.Topic{Name: "orders", ID: "orders-2", Partitions: 1, CreatedMS: 2}
				if err := meta.CreateTopic(ctx, again); err != nil {
					return err
				}
				as, err := meta.JoinGroup(ctx, second, "z", "key-of-z", []metadata.Topic{again}, time.Minute, time.Now())
				if err != nil {
					return err
				}
				return meta.CommitOffsets(ctx, second, "z", "key-of-z", []metadata.OffsetCommit{{Topic: "orders", Offset: 5, Lease: as[0].Lease}}, time.Now())
			})
			if err != nil {
				t.Fatal(err)
			}
			if second == "" {
				t.Fatalf("renewed %d times, want one before each group", renewals)
			}
			first := map[string]string{"a": "b", "b": "a"}[second]
			if offs := offsets(first); len(offs) != 0 {
				t.Errorf("group %s, swept before the topic came back: offsets %+v, want none", first, offs)
			}
			if offs := offsets(second); len(offs) != 1 || offs[0].Offset != 5 {
				t.Errorf("group %s: offsets %+v, want orders/0 = 5 committed after the topic came back", second, offs)
			}
		})
	}
}
