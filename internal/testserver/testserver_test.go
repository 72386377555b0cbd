package testserver

import (
	"bytes"
	"context"
	"testing"

	"github.com/minio/minio-go/v7"
)

func TestMinIOStartsAndRestarts(t *testing.T) {
	m := StartMinIO(t)
	bucket := m.CreateBucket(t, "probe")
	c := m.Client(t)
	ctx := t.Context()
	if _, err := c.PutObject(ctx, bucket, "k", bytes.NewReader([]byte("v")), 1, minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	m.Kill()
	if err := httpOK(ctx, m.Endpoint+"/minio/health/live"); err == nil {
		t.Fatal("MinIO still answers after Kill")
	}
	if err := m.Start(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.StatObject(ctx, bucket, "k", minio.StatObjectOptions{}); err != nil {
		t.Fatalf("object lost across a MinIO restart: %v", err)
	}
}

func TestRedisAOFSurvivesKill(t *testing.T) {
	r := StartRedis(t, RedisOptions{AppendFsync: "always"})
	ctx := context.Background()
	if reply, err := redisInline(ctx, r.Addr, "SET durable yes"); err != nil || reply != "+OK" {
		t.Fatalf("SET: %q, %v", reply, err)
	}
	pid := r.Pid()
	r.Kill()
	if err := redisPing(ctx, r.Addr); err == nil {
		t.Fatal("Redis still answers after Kill")
	}
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	if r.Pid() == pid || r.Pid() == 0 {
		t.Fatalf("restart did not start a new process (pid %d, before %d)", r.Pid(), pid)
	}
	if reply, err := redisInline(ctx, r.Addr, "EXISTS durable"); err != nil || reply != ":1" {
		t.Fatalf("key written before kill -9 is gone after the AOF reload: EXISTS = %q, %v", reply, err)
	}
}
