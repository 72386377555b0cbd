package client

import (
	"context"
	"fmt"
	"net/http"
	"time"
)

// Topic is a topic's configuration.
type Topic struct {
	Name       string
	Partitions int
	// Retention is how long records are kept, by append time (when the
	// node wrote the chunk holding them); zero keeps them forever.
	Retention time.Duration
	// RetentionBytes bounds each partition's stored bytes: retention
	// removes the oldest batches while the partition stays at or above it;
	// zero is no bound.
	RetentionBytes int64
}

// PartitionStats are the offsets of one partition.
type PartitionStats struct {
	Partition int32
	// LogStartOffset is the oldest offset still readable; it rises as
	// retention deletes records.
	LogStartOffset int64
	// HighWatermark is the offset the next record will get: the number
	// of records ever committed to the partition.
	HighWatermark int64
	// StoredBytes is the size of the partition's stored batches, the
	// figure RetentionBytes bounds.
	StoredBytes int64
}

// TopicDescription is a topic, what it stores and its partitions' offsets.
type TopicDescription struct {
	Topic
	// StoredBytes is the size of the topic's stored batches.
	StoredBytes int64
	// Objects is the number of objects (chunks) in the bucket holding
	// them.
	Objects int64
	// LogStartAge is the age of the topic's oldest readable batch by
	// append time; zero when the topic holds nothing.
	LogStartAge time.Duration
	// PartitionStats has one entry per partition, in partition order.
	PartitionStats []PartitionStats
}

// TopicOpt is a retention setting of CreateTopic and UpdateTopic.
type TopicOpt func(*topicSettings)

// topicSettings are the settings the options chose; nil is not chosen.
type topicSettings struct {
	RetentionMS    *int64 `json:"retention_ms,omitempty"`
	RetentionBytes *int64 `json:"retention_bytes,omitempty"`
}

// WithRetention keeps the topic's records for d (to the millisecond) after
// the node wrote them; 0, or creating without it, keeps them forever.
func WithRetention(d time.Duration) TopicOpt {
	ms := d.Milliseconds()
	return func(t *topicSettings) { t.RetentionMS = &ms }
}

// WithRetentionBytes bounds each partition's stored bytes to n: the oldest
// batches go while the partition stays at or above n. 0, or creating
// without it, is no bound.
func WithRetentionBytes(n int64) TopicOpt {
	return func(t *topicSettings) { t.RetentionBytes = &n }
}

type apiTopic struct {
	Name           string `json:"name"`
	Partitions     int    `json:"partitions"`
	RetentionMS    int64  `json:"retention_ms"`
	RetentionBytes int64  `json:"retention_bytes"`
}

func (t apiTopic) topic() Topic {
	return Topic{Name: t.Name, Partitions: t.Partitions, Retention: time.Duration(t.RetentionMS) * time.Millisecond, RetentionBytes: t.RetentionBytes}
}

type apiTopicCreate struct {
	Name       string `json:"name"`
	Partitions int    `json:"partitions"`
	topicSettings
}

// CreateTopic creates a topic with the given number of partitions (1 to
// 10,000, fixed for the topic's life). It returns ErrTopicExists when the
// name is taken. It is not retried, since a retry after a lost answer
// would report ErrTopicExists for the caller's own topic.
func (c *Client) CreateTopic(ctx context.Context, name string, partitions int, opts ...TopicOpt) (Topic, error) {
	in := apiTopicCreate{Name: name, Partitions: partitions}
	for _, o := range opts {
		o(&in.topicSettings)
	}
	var out apiTopic
	if _, err := c.sendJSON(ctx, http.MethodPost, "/v1/topics", false, in, &out); err != nil {
		return Topic{}, withOp("create topic "+name, err)
	}
	return out.topic(), nil
}

// UpdateTopic changes the topic's retention (WithRetention,
// WithRetentionBytes; settings not given stay as they are) and returns the
// topic as it is afterwards, or ErrTopicNotFound. The retention job
// applies the change at its next pass. It is retried like a read, since
// setting the same values twice changes nothing.
func (c *Client) UpdateTopic(ctx context.Context, name string, opts ...TopicOpt) (TopicDescription, error) {
	if name == "" {
		return TopicDescription{}, fmt.Errorf("update topic: %w: empty topic name", ErrInvalidRequest)
	}
	var in topicSettings
	for _, o := range opts {
		o(&in)
	}
	if in.RetentionMS == nil && in.RetentionBytes == nil {
		return TopicDescription{}, fmt.Errorf("update topic %s: %w: nothing to change (give WithRetention or WithRetentionBytes)", name, ErrInvalidRequest)
	}
	var out apiTopicDescription
	if _, err := c.sendJSON(ctx, http.MethodPatch, apiPath("v1", "topics", name), true, in, &out); err != nil {
		return TopicDescription{}, withOp("update topic "+name, err)
	}
	return out.description(), nil
}

// ListTopics returns every topic, sorted by name as the node lists them.
func (c *Client) ListTopics(ctx context.Context) ([]Topic, error) {
	var out struct {
		Topics []apiTopic `json:"topics"`
	}
	if err := c.getJSON(ctx, "/v1/topics", &out); err != nil {
		return nil, withOp("list topics", err)
	}
	topics := make([]Topic, len(out.Topics))
	for i, t := range out.Topics {
		topics[i] = t.topic()
	}
	return topics, nil
}

type apiTopicDescription struct {
	apiTopic
	StoredBytes    int64 `json:"stored_bytes"`
	Objects        int64 `json:"objects"`
	LogStartAgeMS  int64 `json:"log_start_age_ms"`
	PartitionStats []struct {
		Partition      int32 `json:"partition"`
		LogStartOffset int64 `json:"log_start_offset"`
		HighWatermark  int64 `json:"high_watermark"`
		StoredBytes    int64 `json:"stored_bytes"`
	} `json:"partition_stats"`
}

func (out apiTopicDescription) description() TopicDescription {
	d := TopicDescription{
		Topic: out.topic(), StoredBytes: out.StoredBytes, Objects: out.Objects,
		LogStartAge:    time.Duration(out.LogStartAgeMS) * time.Millisecond,
		PartitionStats: make([]PartitionStats, len(out.PartitionStats)),
	}
	for i, s := range out.PartitionStats {
		d.PartitionStats[i] = PartitionStats{Partition: s.Partition, LogStartOffset: s.LogStartOffset, HighWatermark: s.HighWatermark, StoredBytes: s.StoredBytes}
	}
	return d
}

// DescribeTopic returns the topic, what it stores and the offsets of its
// partitions, or ErrTopicNotFound.
func (c *Client) DescribeTopic(ctx context.Context, name string) (TopicDescription, error) {
	if name == "" {
		return TopicDescription{}, fmt.Errorf("describe topic: %w: empty topic name", ErrInvalidRequest)
	}
	var out apiTopicDescription
	if err := c.getJSON(ctx, apiPath("v1", "topics", name), &out); err != nil {
		return TopicDescription{}, withOp("describe topic "+name, err)
	}
	return out.description(), nil
}

// DeleteTopic deletes the topic and its records, or returns
// ErrTopicNotFound. It is not retried, since a retry after a lost answer
// would report ErrTopicNotFound.
func (c *Client) DeleteTopic(ctx context.Context, name string) error {
	if name == "" {
		return fmt.Errorf("delete topic: %w: empty topic name", ErrInvalidRequest)
	}
	if _, err := c.do(ctx, &request{method: http.MethodDelete, path: apiPath("v1", "topics", name)}); err != nil {
		return withOp("delete topic "+name, err)
	}
	return nil
}

// GroupDescription is a consumer group: its live members and its
// committed offsets.
type GroupDescription struct {
	Group string
	// OffsetReset is the group's offset reset policy, OffsetResetEarliest
	// or OffsetResetLatest (see WithOffsetReset).
	OffsetReset string
	Members     []GroupMember
	Offsets     []GroupOffset
}

// GroupMember is a live member of a group.
type GroupMember struct {
	MemberID       string
	Topics         []string
	SessionTimeout time.Duration
	// Expires is when the member expires unless it heartbeats first.
	Expires     time.Time
	Assignments []Assignment
}

// Assignment is a partition held by a group member.
type Assignment struct {
	TopicPartition
	// Lease is the fencing token under which the member commits offsets;
	// a partition that changes hands gets a new, greater lease. Only the
	// member's own join and heartbeat answers carry it (OnAssigned):
	// DescribeGroup leaves it 0, since a lease authorizes commits.
	Lease int64
	// CommittedOffset is the next offset the group reads, or -1 when the
	// group has committed none for the partition.
	CommittedOffset int64
	// Revoking is set while the group moves the partition to another
	// member: the holder still owns it under Lease, and hands it over
	// once it has committed what it processed and released it (or its
	// session or the release deadline ran out).
	Revoking bool
}

// GroupOffset is a group's position in one partition.
type GroupOffset struct {
	TopicPartition
	// CommittedOffset is the next offset the group reads, -1 when it
	// committed none.
	CommittedOffset int64
	// LogStartOffset is the partition's oldest offset still kept.
	LogStartOffset int64
	HighWatermark  int64
	// Lag is how many records the group has yet to read: the high
	// watermark minus the larger of CommittedOffset and LogStartOffset.
	Lag int64
	// BelowLogStart is set when CommittedOffset is below LogStartOffset:
	// retention deleted records the group had not read, and its next
	// member continues per the group's offset reset policy.
	BelowLogStart bool
}

type apiAssignment struct {
	Topic           string `json:"topic"`
	Partition       int32  `json:"partition"`
	Lease           int64  `json:"lease"`
	CommittedOffset int64  `json:"committed_offset"`
	Revoking        bool   `json:"revoking"`
}

func (a apiAssignment) assignment() Assignment {
	return Assignment{TopicPartition: TopicPartition{a.Topic, a.Partition}, Lease: a.Lease, CommittedOffset: a.CommittedOffset, Revoking: a.Revoking}
}

func assignmentsOf(in []apiAssignment) []Assignment {
	out := make([]Assignment, len(in))
	for i, a := range in {
		out[i] = a.assignment()
	}
	return out
}

// ListGroups returns the name of every group that had a member and was
// not deleted, sorted.
func (c *Client) ListGroups(ctx context.Context) ([]string, error) {
	var out struct {
		Groups []string `json:"groups"`
	}
	if err := c.getJSON(ctx, "/v1/groups", &out); err != nil {
		return nil, withOp("list groups", err)
	}
	return out.Groups, nil
}

// DescribeGroup returns a consumer group's live members, their partitions
// and the group's committed offsets with their lag, or ErrGroupNotFound
// when the group never had a member or was deleted.
func (c *Client) DescribeGroup(ctx context.Context, group string) (GroupDescription, error) {
	if group == "" {
		return GroupDescription{}, fmt.Errorf("describe group: %w: empty group name", ErrInvalidRequest)
	}
	var out struct {
		Group       string `json:"group"`
		OffsetReset string `json:"offset_reset"`
		Members     []struct {
			MemberID         string          `json:"member_id"`
			Topics           []string        `json:"topics"`
			SessionTimeoutMS int64           `json:"session_timeout_ms"`
			ExpiresMS        int64           `json:"expires_ms"`
			Assignments      []apiAssignment `json:"assignments"`
		} `json:"members"`
		Offsets []struct {
			Topic           string `json:"topic"`
			Partition       int32  `json:"partition"`
			CommittedOffset int64  `json:"committed_offset"`
			LogStartOffset  int64  `json:"log_start_offset"`
			HighWatermark   int64  `json:"high_watermark"`
			Lag             int64  `json:"lag"`
			BelowLogStart   bool   `json:"below_log_start"`
		} `json:"offsets"`
	}
	if err := c.getJSON(ctx, apiPath("v1", "groups", group), &out); err != nil {
		return GroupDescription{}, withOp("describe group "+group, err)
	}
	d := GroupDescription{Group: out.Group, OffsetReset: out.OffsetReset}
	for _, m := range out.Members {
		d.Members = append(d.Members, GroupMember{
			MemberID: m.MemberID, Topics: m.Topics,
			SessionTimeout: time.Duration(m.SessionTimeoutMS) * time.Millisecond,
			Expires:        time.UnixMilli(m.ExpiresMS),
			Assignments:    assignmentsOf(m.Assignments),
		})
	}
	for _, o := range out.Offsets {
		d.Offsets = append(d.Offsets, GroupOffset{
			TopicPartition:  TopicPartition{o.Topic, o.Partition},
			CommittedOffset: o.CommittedOffset, LogStartOffset: o.LogStartOffset, HighWatermark: o.HighWatermark,
			Lag: o.Lag, BelowLogStart: o.BelowLogStart,
		})
	}
	return d, nil
}

// DeleteGroup deletes a consumer group that has no live member, with its
// committed offsets. It returns ErrGroupNotEmpty while a member's session
// runs (close the group's consumers first), and ErrGroupNotFound for a
// group that never had a member or was deleted. It is not retried, since
// a retry after a lost answer would report ErrGroupNotFound.
func (c *Client) DeleteGroup(ctx context.Context, group string) error {
	if err := validateName("group", group); err != nil {
		return fmt.Errorf("delete group: %w", err)
	}
	if _, err := c.do(ctx, &request{method: http.MethodDelete, path: apiPath("v1", "groups", group)}); err != nil {
		return withOp("delete group "+group, err)
	}
	return nil
}
