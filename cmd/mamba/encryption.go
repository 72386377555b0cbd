package main

import (
	"context"
	"fmt"
	"os"

	"github.com/spf13/pflag"

	"github.com/mambamq/mamba/bucket"
	"github.com/mambamq/mamba/objectstore"
	"github.com/mambamq/mamba/objectstore/envelope"
	"github.com/mambamq/mamba/objectstore/storeurl"
)

// encryptionKeyFileUsage is the help of --encryption-key-file, on every
// command that reads or writes the bucket's objects.
const encryptionKeyFileUsage = "file of encryption keys, one id:base64-key line each (32 bytes; the first seals new objects, all open old ones); " +
	"without it " + envelope.EnvKey + " is read, and with neither objects are written in the clear (see docs/security.md)"

// addEncryptionKeyFlag adds --encryption-key-file.
func addEncryptionKeyFlag(f *pflag.FlagSet, v *string) {
	f.StringVar(v, "encryption-key-file", "", encryptionKeyFileUsage)
}

// sealStore returns the instrumented store wrapped so that it seals what
// it writes with the keyring of keyFile (or of the environment) and opens
// sealed objects it reads; with no keyring it writes in the clear and names
// the key id of any sealed object it cannot open. The metrics stay on the
// instrumented store below the envelope, where they count the requests and
// bytes the bucket really serves (header reads included); the envelope is
// wrapped once more with unregistered metrics only so that components
// which instrument the store they get (ingest, the checkpointer) take it
// as it is instead of counting every call a second time.
func sealStore(store *bucket.Instrumented, keyFile string) (objectstore.Store, *envelope.Keyring, error) {
	ring, err := envelope.LoadKeyring(keyFile, os.LookupEnv)
	if err != nil {
		return nil, nil, err
	}
	return bucket.Instrument(envelope.New(store, ring), nil), ring, nil
}

// describeEncryption says which key seals new objects, for the start-up
// log line.
func describeEncryption(ring *envelope.Keyring) string {
	if ring == nil {
		return "off"
	}
	return fmt.Sprintf("active key %s of %d", ring.Active(), len(ring.IDs()))
}

// drKeys is dr status's check of the encryption keys against the replica.
type drKeys struct {
	// Checkpoint is the target's newest checkpoint, empty when it has
	// none.
	Checkpoint string `json:"checkpoint,omitempty"`
	// KeyID names the key that sealed it, empty when it is in the clear.
	KeyID string `json:"key_id,omitempty"`
	// Error says why the keys do not open it; empty when they do.
	Error string `json:"error,omitempty"`
}

// checkReplicaKeys opens the newest checkpoint of the bucket at target
// with the keyring of keyFile (or the environment), as a failover's
// restore will. It returns nil when there is no keyring; a failure to
// open goes in drKeys.Error, a failure to read in the error.
func checkReplicaKeys(ctx context.Context, target, keyFile string) (*drKeys, error) {
	ring, err := envelope.LoadKeyring(keyFile, os.LookupEnv)
	if err != nil || ring == nil {
		return nil, err
	}
	store, err := storeurl.Open(ctx, target)
	if err != nil {
		return nil, fmt.Errorf("target: %w", err)
	}
	defer objectstore.Close(store)
	b := bucket.New(bucket.Instrument(store, nil))
	cps, err := b.ListCheckpoints(ctx)
	if err != nil || len(cps) == 0 {
		return &drKeys{}, err
	}
	newest := cps[len(cps)-1]
	raw, err := b.ReadCheckpoint(ctx, newest)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", newest.Key, err)
	}
	k := &drKeys{Checkpoint: newest.Key}
	if !envelope.IsSealed(raw) {
		return k, nil
	}
	if h, err := envelope.ParseHeader(newest.Key, raw); err == nil {
		k.KeyID = h.KeyID
	}
	if _, err := envelope.Open(ring, newest.Key, raw); err != nil {
		k.Error = err.Error()
	}
	return k, nil
}
