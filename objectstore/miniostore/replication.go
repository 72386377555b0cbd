package miniostore

import (
	"context"

	"github.com/minio/minio-go/v7"

	"github.com/mambamq/mamba/objectstore"
)

var _ objectstore.ReplicationReporter = (*Store)(nil)

// ReplicationStatus issues a HEAD request and returns the object's
// x-amz-replication-status: PENDING, COMPLETED, FAILED, REPLICA, or "" when
// no replication rule applies to it.
func (s *Store) ReplicationStatus(ctx context.Context, key string) (string, error) {
	if err := begin(ctx, "stat", key); err != nil {
		return "", err
	}
	info, err := s.client.StatObject(ctx, s.bucket, key, minio.StatObjectOptions{})
	if err != nil {
		return "", mapErr("stat", key, err)
	}
	return info.ReplicationStatus, nil
}
