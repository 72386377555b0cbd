package main

import (
	"fmt"
	"os"

	"github.com/spf13/pflag"

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

// sealStore returns store wrapped so that it seals what it writes with the
// keyring of keyFile (or of the environment) and opens sealed objects it
// reads; with no keyring it writes in the clear and names the key id of
// any sealed object it cannot open.
func sealStore(store objectstore.Store, keyFile string) (objectstore.Store, error) {
	ring, err := envelope.LoadKeyring(keyFile, os.LookupEnv)
	if err != nil {
		return nil, err
	}
	return envelope.New(store, ring), nil
}

// describeEncryption says which key seals new objects, for the start-up
// log line.
func describeEncryption(store objectstore.Store) string {
	if s, ok := store.(*envelope.Store); ok && s.Keyring() != nil {
		return fmt.Sprintf("active key %s of %d", s.Keyring().Active(), len(s.Keyring().IDs()))
	}
	return "off"
}
