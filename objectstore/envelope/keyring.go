package envelope

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strings"
)

// KeySize is the size of a master key and of a data key: AES-256.
const KeySize = 32

// MaxKeyIDLen is the longest key id, in bytes.
const MaxKeyIDLen = 32

// MaxKeys bounds the keys of one keyring.
const MaxKeys = 64

// EnvKey is the environment variable LoadKeyring reads when no key file is
// given.
const EnvKey = "MAMBA_ENCRYPTION_KEY"

// DefaultKeyID is the id of a key given in EnvKey as bare base64, without
// an "id:" in front.
const DefaultKeyID = "default"

// Keyring holds the master keys a process may use: the active one seals
// new objects, and every one opens objects sealed under its id. A Keyring
// is immutable and safe for concurrent use.
type Keyring struct {
	ids  []string // ids[0] is the active key
	keys map[string][]byte
}

// Active returns the id of the key new objects are sealed with.
func (r *Keyring) Active() string { return r.ids[0] }

// IDs returns the key ids, the active one first.
func (r *Keyring) IDs() []string { return append([]string(nil), r.ids...) }

// key returns the master key with the given id, or an error wrapping
// ErrUnknownKey that names the id (never the key).
func (r *Keyring) key(id string) ([]byte, error) {
	if r == nil {
		return nil, fmt.Errorf("%w: key id %q, and no encryption key is configured", ErrUnknownKey, id)
	}
	k, ok := r.keys[id]
	if !ok {
		return nil, fmt.Errorf("%w: key id %q is not in the keyring (which holds %s)", ErrUnknownKey, id, strings.Join(r.ids, ", "))
	}
	return k, nil
}

// ValidateKeyID reports whether id can name a key: 1 to MaxKeyIDLen bytes
// of [A-Za-z0-9._-].
func ValidateKeyID(id string) error {
	if len(id) == 0 || len(id) > MaxKeyIDLen {
		return fmt.Errorf("key id %q: want 1 to %d bytes of [A-Za-z0-9._-]", id, MaxKeyIDLen)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("key id %q: want 1 to %d bytes of [A-Za-z0-9._-]", id, MaxKeyIDLen)
		}
	}
	return nil
}

// ParseKeyring parses a keyring: one key per line as "id:base64", where
// base64 is standard encoding of KeySize bytes (openssl rand -base64 32).
// The first key is the active one; blank lines and lines starting with #
// are ignored. With bare, a single line of base64 alone is accepted too
// and gets the id DefaultKeyID. Errors name the line, never a key.
func ParseKeyring(data []byte, bare bool) (*Keyring, error) {
	r := &Keyring{keys: map[string][]byte{}}
	var errs []error
	sc := bufio.NewScanner(bytes.NewReader(data))
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		id, b64, found := strings.Cut(text, ":")
		if !found {
			if !bare {
				errs = append(errs, fmt.Errorf("line %d: want id:base64-key", line))
				continue
			}
			id, b64 = DefaultKeyID, text
		}
		if err := ValidateKeyID(id); err != nil {
			errs = append(errs, fmt.Errorf("line %d: %w", line, err))
			continue
		}
		key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(b64))
		if err != nil || len(key) != KeySize {
			errs = append(errs, fmt.Errorf("line %d: key %q is not %d bytes of standard base64", line, id, KeySize))
			continue
		}
		if _, dup := r.keys[id]; dup {
			errs = append(errs, fmt.Errorf("line %d: key id %q appears twice", line, id))
			continue
		}
		if len(r.ids) == MaxKeys {
			errs = append(errs, fmt.Errorf("line %d: more than %d keys", line, MaxKeys))
			break
		}
		r.ids = append(r.ids, id)
		r.keys[id] = key
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, err)
	}
	if len(errs) == 0 && len(r.ids) == 0 {
		errs = append(errs, errors.New("no keys"))
	}
	if bare && len(r.ids) > 1 && r.keys[DefaultKeyID] != nil {
		errs = append(errs, fmt.Errorf("a bare key (id %q) cannot be combined with others; give every key an id", DefaultKeyID))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return r, nil
}

// MaxKeyringFileSize bounds a key file: MaxKeys lines and comments.
const MaxKeyringFileSize = 64 << 10

// LoadKeyring returns the keyring in the file at path, or, when path is
// empty, the one in the environment variable EnvKey (lookup is os.LookupEnv
// in production), or nil when neither is set: objects are then written in
// the clear and encrypted ones cannot be read. Setting both is an error,
// so that it is always clear which keys a process uses.
func LoadKeyring(path string, lookup func(string) (string, bool)) (*Keyring, error) {
	env, inEnv := lookup(EnvKey)
	inEnv = inEnv && strings.TrimSpace(env) != ""
	switch {
	case path != "" && inEnv:
		return nil, fmt.Errorf("both --encryption-key-file and %s are set: give one", EnvKey)
	case path != "":
		info, err := os.Stat(path)
		if err != nil {
			return nil, fmt.Errorf("encryption key file: %w", err)
		}
		if info.Size() > MaxKeyringFileSize {
			return nil, fmt.Errorf("encryption key file %s is %d bytes, over %d", path, info.Size(), MaxKeyringFileSize)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("encryption key file: %w", err)
		}
		r, err := ParseKeyring(data, false)
		if err != nil {
			return nil, fmt.Errorf("encryption key file %s: %w", path, err)
		}
		return r, nil
	case inEnv:
		r, err := ParseKeyring([]byte(strings.ReplaceAll(env, ",", "\n")), true)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", EnvKey, err)
		}
		return r, nil
	}
	return nil, nil
}
