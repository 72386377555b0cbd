package objectstore

import (
	"context"
	"errors"
)

// ErrNoReplicationStatus is returned by the ReplicationStatus method of a
// store that wraps another (an instrumented store) when the store it wraps
// cannot report replication status.
var ErrNoReplicationStatus = errors.New("store cannot report replication status")

// ReplicationReporter is implemented by stores that can tell an object's
// bucket replication status, as the S3 API reports it in the
// x-amz-replication-status header: "PENDING", "COMPLETED", "FAILED" or
// "REPLICA" (the object is itself a replica), or "" when no replication
// rule applies to the object.
type ReplicationReporter interface {
	ReplicationStatus(ctx context.Context, key string) (string, error)
}

// ReplicationStatus returns the replication status of the object at key,
// looking through a Prefixed store. ok is false when the store cannot
// report replication status.
func ReplicationStatus(ctx context.Context, store Store, key string) (status string, ok bool, err error) {
	if p, isPrefixed := store.(*Prefixed); isPrefixed {
		full, err := p.full(key)
		if err != nil {
			return "", true, err
		}
		return ReplicationStatus(ctx, p.store, full)
	}
	r, ok := store.(ReplicationReporter)
	if !ok {
		return "", false, nil
	}
	status, err = r.ReplicationStatus(ctx, key)
	if errors.Is(err, ErrNoReplicationStatus) {
		return "", false, nil
	}
	return status, true, err
}
