package recovery_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/mambamq/mamba/bucket"
	"github.com/mambamq/mamba/ingest"
	"github.com/mambamq/mamba/objectstore"
	"github.com/mambamq/mamba/objectstore/envelope"
	"github.com/mambamq/mamba/recovery"
)

func keyring(t *testing.T, text string) *envelope.Keyring {
	t.Helper()
	r, err := envelope.ParseKeyring([]byte(text), false)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// In a sealed bucket, a newer checkpoint whose ciphertext was altered is
// passed over like a corrupt one, and the restore uses the one before it;
// a keyring without the checkpoint's key stops the restore, naming the
// key id, before it changes the store.
func TestRestoreSealedCheckpoints(t *testing.T) {
	ctx := t.Context()
	mem := objectstore.NewMemory()
	store := envelope.New(mem, keyring(t, "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n"))
	meta := newMeta(t)
	a := startNode(t, meta, store, "node-a")
	if _, err := a.CreateTopic(ctx, ingest.TopicConfig{Name: "orders", Partitions: 2}); err != nil {
		t.Fatal(err)
	}
	p := &producer{t: t}
	p.produce(a, "orders", []string{"one", "two", "three"}, "")
	info := checkpointNow(t, meta, store)
	good, err := store.Get(ctx, info.Key)
	if err != nil {
		t.Fatal(err)
	}
	newer := bucket.CheckpointKey(info.Time.Add(time.Second), "node-z")
	if err := store.Put(ctx, newer, good); err != nil {
		t.Fatal(err)
	}
	raw, _ := mem.Get(ctx, newer)
	raw[len(raw)-1] ^= 1
	if err := mem.Put(ctx, newer, raw); err != nil {
		t.Fatal(err)
	}

	sum, err := recovery.Restore(ctx, store, newMeta(t), recovery.RestoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Checkpoint != info.Key || len(sum.CorruptCheckpoints) != 1 || sum.CorruptCheckpoints[0].Key != newer ||
		!errors.Is(sum.CorruptCheckpoints[0].Err, envelope.ErrCorrupt) {
		t.Fatalf("restored from %s, corrupt %+v; want %s, with %s corrupt", sum.Checkpoint, sum.CorruptCheckpoints, info.Key, newer)
	}

	other := envelope.New(mem, keyring(t, "k2:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n"))
	empty := newMeta(t)
	_, err = recovery.Restore(ctx, other, empty, recovery.RestoreOptions{})
	if !errors.Is(err, envelope.ErrUnknownKey) || !strings.Contains(err.Error(), `"k1"`) {
		t.Fatalf("restore without the key: %v, want ErrUnknownKey naming k1", err)
	}
	if topics, err := empty.Topics(ctx); err != nil || len(topics) != 0 {
		t.Fatalf("a refused restore created topics: %v, %v", topics, err)
	}
}
