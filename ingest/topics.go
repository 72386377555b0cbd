package ingest

import (
	"context"
	"errors"
	"fmt"

	"github.com/mambamq/mamba/bucket"
	"github.com/mambamq/mamba/metadata"
)

// topicConfig is the caller's view of a registered topic.
func topicConfig(t metadata.Topic) TopicConfig {
	return TopicConfig{Name: t.Name, Partitions: t.Partitions, RetentionMS: t.RetentionMS, RetentionBytes: t.RetentionBytes}
}

// DescribeTopic returns the topic, what it stores (bytes, objects, the age
// of its oldest batch) and its partitions' offsets and stored bytes.
func (n *Node) DescribeTopic(ctx context.Context, name string) (TopicDescription, error) {
	t, stats, err := n.meta.PartitionStats(ctx, name)
	if err != nil {
		return TopicDescription{}, metaErr(err)
	}
	u, err := n.meta.Usage(ctx, name)
	if err != nil {
		return TopicDescription{}, metaErr(err)
	}
	first, ok, err := n.meta.FirstEntries(ctx, name, t.Partitions)
	if err != nil {
		return TopicDescription{}, metaErr(err)
	}
	return TopicDescription{
		TopicConfig:    topicConfig(t),
		StoredBytes:    u.StoredBytes,
		Objects:        u.Objects,
		LogStartAge:    metadata.LogStartAge(first, ok, n.now()),
		PartitionStats: stats,
	}, nil
}

// UpdateTopic changes the topic's retention. Like CreateTopic it writes
// the topic's configuration to the bucket first, then changes Redis, so
// that the bucket never holds less than Redis enforces; when Redis then
// holds something else than was written (a concurrent update, or the
// topic recreated meanwhile), the configuration is written again from
// what Redis holds.
func (n *Node) UpdateTopic(ctx context.Context, name string, u TopicUpdate) (TopicConfig, error) {
	if err := ValidateTopicUpdate(name, u); err != nil {
		return TopicConfig{}, err
	}
	t, err := n.meta.Topic(ctx, name)
	if err != nil {
		return TopicConfig{}, metaErr(err)
	}
	if u.RetentionMS != nil {
		t.RetentionMS = *u.RetentionMS
	}
	if u.RetentionBytes != nil {
		t.RetentionBytes = *u.RetentionBytes
	}
	if _, err := n.bucket.PutTopicConfig(ctx, bucket.TopicConfig(t)); err != nil {
		return TopicConfig{}, fmt.Errorf("write topic config: %w: %w", ErrUnavailable, err)
	}
	after, err := n.meta.UpdateTopic(ctx, name, metadata.TopicUpdate{RetentionMS: u.RetentionMS, RetentionBytes: u.RetentionBytes})
	if errors.Is(err, metadata.ErrTopicNotFound) {
		// Deleted meanwhile: its delete removed the config before Redis,
		// so ours is the only one left of that incarnation.
		_ = n.bucket.DeleteTopicConfig(context.WithoutCancel(ctx), t.Name, t.ID)
		return TopicConfig{}, metaErr(err)
	}
	if err != nil {
		return TopicConfig{}, metaErr(err)
	}
	if after != t {
		if after.ID != t.ID {
			_ = n.bucket.DeleteTopicConfig(context.WithoutCancel(ctx), t.Name, t.ID)
		}
		if _, err := n.bucket.PutTopicConfig(ctx, bucket.TopicConfig(after)); err != nil {
			return TopicConfig{}, fmt.Errorf("write topic config: %w: %w", ErrUnavailable, err)
		}
	}
	return topicConfig(after), nil
}
