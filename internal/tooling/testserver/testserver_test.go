package testserver

import (
	"bytes"
	"encoding/json"
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
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
	if resp, err := http.Get(m.Endpoint + "/minio/health/live"); err == nil {
		resp.Body.Close()
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
	ctx := t.Context()
	c := redis.NewClient(&redis.Options{Addr: r.Addr})
	if err := c.Set(ctx, "durable", "yes", 0).Err(); err != nil {
		t.Fatalf("SET: %v", err)
	}
	c.Close()
	pid := r.Pid()
	r.Kill()
	if conn, err := net.Dial("tcp", r.Addr); err == nil {
		conn.Close()
		t.Fatal("Redis still accepts connections after Kill")
	}
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	c = redis.NewClient(&redis.Options{Addr: r.Addr})
	defer c.Close()
	if r.Pid() == pid || r.Pid() == 0 {
		t.Fatalf("restart did not start a new process (pid %d, before %d)", r.Pid(), pid)
	}
	if n, err := c.Exists(ctx, "durable").Result(); err != nil || n != 1 {
		t.Fatalf("key written before kill -9 is gone after the AOF reload: EXISTS = %d, %v", n, err)
	}
}

// A message JetStream acknowledged with sync_interval always is read back
// from file storage after the server is killed with SIGKILL and restarted.
func TestNATSJetStreamSurvivesKill(t *testing.T) {
	n := StartNATS(t, NATSOptions{SyncAlways: true})
	ctx := t.Context()
	js := connectJetStream(t, n.URL)
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name: "PROBE", Subjects: []string{"probe.>"}, Storage: jetstream.FileStorage,
	}); err != nil {
		t.Fatal(err)
	}
	ack, err := js.Publish(ctx, "probe.1", []byte("durable"))
	if err != nil {
		t.Fatal(err)
	}
	js.Conn().Close()

	pid := n.Pid()
	n.Kill()
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	if n.Pid() == pid || n.Pid() == 0 {
		t.Fatalf("restart did not start a new process (pid %d, before %d)", n.Pid(), pid)
	}
	js = connectJetStream(t, n.URL)
	s, err := js.Stream(ctx, "PROBE")
	if err != nil {
		t.Fatalf("stream lost across kill -9: %v", err)
	}
	msg, err := s.GetMsg(ctx, ack.Sequence)
	if err != nil {
		t.Fatalf("message %d lost across kill -9: %v", ack.Sequence, err)
	}
	if msg.Subject != "probe.1" || string(msg.Data) != "durable" {
		t.Fatalf("read back %s %q, want probe.1 \"durable\"", msg.Subject, msg.Data)
	}
}

// The server runs with the fsync policy asked for, as its /varz reports.
func TestNATSSyncPolicy(t *testing.T) {
	for _, always := range []bool{false, true} {
		n := StartNATS(t, NATSOptions{SyncAlways: always})
		resp, err := http.Get(n.MonitorURL + "/varz")
		if err != nil {
			t.Fatal(err)
		}
		var varz struct {
			JetStream struct {
				Config struct {
					StoreDir     string        `json:"store_dir"`
					SyncInterval time.Duration `json:"sync_interval"`
					SyncAlways   bool          `json:"sync_always"`
				} `json:"config"`
			} `json:"jetstream"`
		}
		err = json.NewDecoder(resp.Body).Decode(&varz)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		cfg := varz.JetStream.Config
		if wantDir := filepath.Join(n.StoreDir, "jetstream"); cfg.SyncAlways != always || cfg.SyncInterval != 2*time.Minute || cfg.StoreDir != wantDir {
			t.Errorf("SyncAlways %v: server reports sync_always %v, sync_interval %v, store_dir %q; want %v, 2m0s, %q",
				always, cfg.SyncAlways, cfg.SyncInterval, cfg.StoreDir, always, wantDir)
		}
	}
}

func connectJetStream(t *testing.T, url string) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}
