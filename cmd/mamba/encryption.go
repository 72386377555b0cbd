package main

import (
	"fmt"
	"os"

	"github.com/spf13/pflag"

	"github.com/mambamq/mamba/bucket"
	"github.com/mambamq/mamba/objectstore"
	"github.com/mambamq/mamba/objectstore/envelope"
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
