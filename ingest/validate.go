package ingest

import (
	"errors"
	"fmt"
	"time"

	"github.com/mambamq/mamba/chunk"
	"github.com/mambamq/mamba/metadata"
)

// The checks of a caller's input, in one place: the Node runs them, and the
// HTTP layer does not repeat them (it only parses). Every error wraps
// ErrInvalidRequest and names the offending field as the API spells it.

// topicNameRule says what ValidTopicName accepts.
var topicNameRule = fmt.Sprintf("want 1 to %d characters of A-Z, a-z, 0-9, '.', '_' and '-', and not \".\" or \"..\"", chunk.MaxTopicLen)

// ValidTopicName reports whether name can name a topic: the chunk
// format's alphabet and length, and not "." or "..", which paths and
// object keys would read as directories.
func ValidTopicName(name string) bool {
	return chunk.ValidateTopic(name) == nil && name != "." && name != ".."
}

// ValidateTopicConfig checks a topic to create, naming every bad field.
func ValidateTopicConfig(cfg TopicConfig) error {
	var errs []error
	if !ValidTopicName(cfg.Name) {
		errs = append(errs, invalidf("name %q: %s", shorten(cfg.Name), topicNameRule))
	}
	if cfg.Partitions < 1 || cfg.Partitions > metadata.MaxPartitions {
		errs = append(errs, invalidf("partitions %d: want 1 to %d", cfg.Partitions, metadata.MaxPartitions))
	}
	errs = append(errs, validateRetention(&cfg.RetentionMS, &cfg.RetentionBytes)...)
	return errors.Join(errs...)
}

// ValidateTopicUpdate checks a change of a topic's retention, naming every
// bad field.
func ValidateTopicUpdate(name string, u TopicUpdate) error {
	var errs []error
	if !ValidTopicName(name) {
		errs = append(errs, invalidf("topic %q: %s", shorten(name), topicNameRule))
	}
	if u.RetentionMS == nil && u.RetentionBytes == nil {
		errs = append(errs, invalidf("nothing to change: set retention_ms, retention_bytes or both"))
	}
	errs = append(errs, validateRetention(u.RetentionMS, u.RetentionBytes)...)
	return errors.Join(errs...)
}

// validateRetention checks the retention fields that are not nil.
func validateRetention(ms, bytes *int64) []error {
	var errs []error
	if ms != nil && (*ms < 0 || *ms > MaxRetentionMS) {
		errs = append(errs, invalidf("retention_ms %d: want 0 (keep forever) to %d (1000 years)", *ms, MaxRetentionMS))
	}
	if bytes != nil && (*bytes < 0 || *bytes > MaxRetentionBytes) {
		errs = append(errs, invalidf("retention_bytes %d: want 0 (no bound) to %d (1 EiB)", *bytes, MaxRetentionBytes))
	}
	return errs
}

// ValidateGroupName checks a consumer group's name.
func ValidateGroupName(group string) error {
	if err := metadata.ValidateGroupName(group); err != nil {
		return invalidf("group: %v", err)
	}
	return nil
}

// ValidateJoinGroup checks the arguments of Service.Join. A zero
// session means DefaultSessionTimeout.
func ValidateJoinGroup(group string, topics []string, session time.Duration) error {
	if err := ValidateGroupName(group); err != nil {
		return err
	}
	if len(topics) == 0 || len(topics) > maxGroupTopics {
		return invalidf("topics: want 1 to %d topics, got %d", maxGroupTopics, len(topics))
	}
	for i, t := range topics {
		if !ValidTopicName(t) {
			return invalidf("topics[%d] %q: %s", i, shorten(t), topicNameRule)
		}
	}
	if session == 0 {
		session = DefaultSessionTimeout
	}
	if session < metadata.MinSessionTimeout || session > metadata.MaxSessionTimeout {
		return invalidf("session_timeout_ms: %d is outside %d..%d", session.Milliseconds(),
			metadata.MinSessionTimeout.Milliseconds(), metadata.MaxSessionTimeout.Milliseconds())
	}
	return nil
}

// ValidateOffsetReset checks a join's offset_reset: "", "earliest" or
// "latest".
func ValidateOffsetReset(policy string) error {
	if err := metadata.ValidateOffsetReset(policy); err != nil {
		return invalidf("%v", err)
	}
	return nil
}

// Validate checks what can be checked of a produce request without its
// topic: that it has records and a well-formed idempotency key. The
// records themselves are checked against the topic by Submit.
func (r ProduceRequest) Validate() error {
	if len(r.Records) == 0 {
		return invalidf("records: want at least one record")
	}
	if k := r.Options.IdempotencyKey; k != "" {
		if err := metadata.ValidateIdempotencyKey(k); err != nil {
			return invalidf("Idempotency-Key: %v", err)
		}
	}
	return nil
}

// shorten cuts s for echoing in an error message.
func shorten(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}

// invalidf returns an error wrapping ErrInvalidRequest.
func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidRequest, fmt.Sprintf(format, args...))
}
