package main

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/mambamq/mamba/bucket"
	"github.com/mambamq/mamba/internal/tooling/testserver"
	"github.com/mambamq/mamba/metadata"
	"github.com/mambamq/mamba/objectstore/envelope"
	"github.com/mambamq/mamba/objectstore/filestore"
)

// keyLine returns a keyring line for id with a random key.
func keyLine(t *testing.T, id string) string {
	t.Helper()
	k := make([]byte, envelope.KeySize)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return id + ":" + base64.StdEncoding.EncodeToString(k) + "\n"
}

func writeKeyFile(t *testing.T, lines ...string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "keys")
	if err := os.WriteFile(path, []byte(strings.Join(lines, "")), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// produceValues produces values to orders with one request each and
// records where they went.
func produceValues(t *testing.T, url string, want map[[2]int64]string, values ...string) {
	t.Helper()
	for _, v := range values {
		code, res, err := postProduce(http.DefaultClient, url+"/v1/topics/orders/records", false, "", []string{v}, []string{v})
		if err != nil || code != http.StatusOK || len(res) != 1 {
			t.Fatalf("produce %s: %d %v", v, code, err)
		}
		want[[2]int64{int64(res[0].Partition), res[0].Offset}] = v
	}
}

func stopNode(t *testing.T, n *testserver.Mamba) {
	t.Helper()
	if err := n.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := n.Wait(); code != 0 {
		t.Fatalf("mamba serve exited %d after SIGTERM", code)
	}
}

// A bucket written in the clear, then sealed under k1, then (after a key
// rotation) under k2: no sealed object holds its plaintext, a restore
// without the keys fails naming the key id, and with the keyring mamba
// restore rebuilds Redis from which a node serves every record.
func TestEncryptedBucketRestore(t *testing.T) {
	m := testserver.StartMinIO(t)
	r := testserver.StartRedis(t, testserver.RedisOptions{AppendFsync: "always"})
	bucketName := m.CreateBucket(t, "sealed")
	k1, k2 := keyLine(t, "k1"), keyLine(t, "k2")
	ringK1 := writeKeyFile(t, k1)
	rotated := writeKeyFile(t, k2, k1) // k2 active, k1 still opens
	want := map[[2]int64]string{}

	phases := []struct {
		args   []string
		values []string
	}{
		{nil, []string{"clear-canary-1", "clear-canary-2"}},
		{[]string{"--encryption-key-file", ringK1}, []string{"secret-canary-k1-a", "secret-canary-k1-b", "secret-canary-k1-c"}},
		{[]string{"--encryption-key-file", rotated}, []string{"secret-canary-k2-a", "secret-canary-k2-b"}},
	}
	for i, ph := range phases {
		args := append([]string{"--flush-interval", "20ms", "--checkpoint-interval", "1h"}, ph.args...)
		n := testserver.StartMamba(t, m, r, bucketName, fmt.Sprintf("node-%d", i), args...)
		if i == 0 {
			if code := doJSON(t, "POST", n.URL+"/v1/topics", map[string]any{"name": "orders", "partitions": 2}, nil); code != http.StatusCreated {
				t.Fatalf("create topic: %d", code)
			}
		}
		produceValues(t, n.URL, want, ph.values...)
		stopNode(t, n)
	}

	// Raw objects: sealed ones hold no plaintext, and both key ids occur.
	ctx := t.Context()
	admin := m.Client(t)
	ids := map[string]int{}
	for obj := range admin.ListObjects(ctx, bucketName, minio.ListObjectsOptions{Recursive: true}) {
		if obj.Err != nil {
			t.Fatal(obj.Err)
		}
		o, err := admin.GetObject(ctx, bucketName, obj.Key, minio.GetObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var raw bytes.Buffer
		if _, err := raw.ReadFrom(o); err != nil {
			t.Fatal(err)
		}
		o.Close()
		if bytes.Contains(raw.Bytes(), []byte("secret-canary")) {
			t.Errorf("object %s holds a sealed record's plaintext", obj.Key)
		}
		if envelope.IsSealed(raw.Bytes()) {
			h, err := envelope.ParseHeader(obj.Key, raw.Bytes())
			if err != nil {
				t.Fatal(err)
			}
			ids[h.KeyID]++
		} else {
			ids["clear"]++
		}
	}
	if ids["k1"] == 0 || ids["k2"] == 0 || ids["clear"] == 0 {
		t.Fatalf("objects by key id: %v, want some of each of clear, k1 and k2", ids)
	}

	t.Setenv("AWS_ACCESS_KEY_ID", m.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", m.SecretKey)
	t.Setenv("AWS_REGION", "us-east-1")
	bucketURL := "s3://" + bucketName + "?endpoint=" + m.Endpoint
	fresh := testserver.StartRedis(t, testserver.RedisOptions{AppendFsync: "always"})
	restore := []string{"restore", "--bucket", bucketURL, "--redis", "redis://" + fresh.Addr + "/0"}

	// Without the keys, or with other key material under the same ids,
	// the restore stops naming the key id and changes nothing.
	wrong := writeKeyFile(t, keyLine(t, "k2"), keyLine(t, "k1"))
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, `key id "k2"`},
		{[]string{"--encryption-key-file", ringK1}, `key id "k2" is not in the keyring`},
		{[]string{"--encryption-key-file", wrong}, `key id "k2" cannot unwrap`},
	} {
		_, _, err := runMamba(t, append(restore, tc.args...)...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("restore %v: %v, want an error saying %s", tc.args, err, tc.want)
		}
		if strings.Contains(err.Error(), strings.TrimSpace(strings.TrimPrefix(k2, "k2:"))) {
			t.Fatal("the error holds key material")
		}
	}

	stdout, stderr, err := runMamba(t, append(restore, "--encryption-key-file", rotated)...)
	if err != nil {
		t.Fatalf("mamba restore: %v\nstdout:\n%s\nstderr:\n%s", err, stdout, stderr)
	}
	n := testserver.StartMamba(t, m, fresh, bucketName, "node-r", "--encryption-key-file", rotated)
	read := 0
	for p := range 2 {
		for _, rec := range fetchBinary(t, n.URL, p) {
			if w := want[[2]int64{int64(p), rec.Offset}]; w != string(rec.Value) {
				t.Fatalf("partition %d offset %d = %q, acknowledged %q", p, rec.Offset, rec.Value, w)
			}
			read++
		}
	}
	if read != len(want) {
		t.Fatalf("read %d records after restore, %d acknowledged", read, len(want))
	}
}

// Bad key settings stop a command before it touches anything, and the
// failover prints a serve command line that keeps the key file.
func TestEncryptionKeyFlagErrors(t *testing.T) {
	good := writeKeyFile(t, keyLine(t, "k1"))
	bad := writeKeyFile(t, "k1:short\n")
	for _, tc := range []struct {
		env  string
		args []string
		want string
	}{
		{"", []string{"--encryption-key-file", filepath.Join(t.TempDir(), "missing")}, "encryption key file"},
		{"", []string{"--encryption-key-file", bad}, "line 1"},
		{"k1:" + base64.StdEncoding.EncodeToString(make([]byte, 32)), []string{"--encryption-key-file", good}, "give one"},
		{"not-a-key", nil, envelope.EnvKey},
	} {
		t.Setenv(envelope.EnvKey, tc.env)
		_, _, err := runMamba(t, append([]string{"restore", "--bucket", "mem://", "--redis", "redis://127.0.0.1:1/0"}, tc.args...)...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("restore %v with %s=%q: %v, want an error naming %s", tc.args, envelope.EnvKey, tc.env, err, tc.want)
		}
	}
	line := serveCommandLine(restoreOptions{bucket: "s3://b", redisURL: "redis://r:6379/0", keyPrefix: metadata.DefaultPrefix,
		dedupWindow: metadata.DefaultDedupWindow, encryptionKeyFile: "/etc/mamba/keyring"})
	if !strings.Contains(line, "--encryption-key-file /etc/mamba/keyring") {
		t.Errorf("serve command line %q drops the key file", line)
	}
}

// dr status with keys opens the replica's newest checkpoint, as a failover
// will, and fails naming the key id when they cannot.
func TestDRStatusChecksKeys(t *testing.T) {
	dir := t.TempDir()
	fs, err := filestore.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer fs.Close()
	k1 := keyLine(t, "k1")
	ring, err := envelope.ParseKeyring([]byte(k1), false)
	if err != nil {
		t.Fatal(err)
	}
	key := bucket.CheckpointKey(time.Now(), "node-a")
	if err := envelope.New(fs, ring).Put(t.Context(), key, []byte("checkpoint bytes")); err != nil {
		t.Fatal(err)
	}
	args := []string{"dr", "status", "--source", "file://" + dir, "--target", "file://" + dir}
	stdout, _, err := runMamba(t, append(args, "--encryption-key-file", writeKeyFile(t, k1))...)
	if err != nil || !strings.Contains(stdout, "keys:        open "+key+" (sealed under key id k1)") {
		t.Fatalf("dr status with the key: %v\n%s", err, stdout)
	}
	stdout, _, err = runMamba(t, append(args, "--encryption-key-file", writeKeyFile(t, keyLine(t, "k2")), "-o", "json")...)
	if err == nil || !strings.Contains(err.Error(), `key id "k1" is not in the keyring`) || !strings.Contains(stdout, `"key_id": "k1"`) {
		t.Fatalf("dr status without the key: %v\n%s", err, stdout)
	}
	if stdout, _, err := runMamba(t, args...); err != nil || strings.Contains(stdout, "keys:") {
		t.Fatalf("dr status with no keys checks keys: %v\n%s", err, stdout)
	}
}
