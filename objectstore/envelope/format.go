package envelope

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// Format constants: see the package documentation.
const (
	// HeaderSize is the size of the fixed envelope header.
	HeaderSize = 104
	// TagSize is the GCM tag that follows every segment's ciphertext.
	TagSize = 16
	// SegmentShift sets the segment size new objects are sealed with:
	// 1<<SegmentShift (16 KiB) plaintext bytes per segment.
	SegmentShift = 14

	minSegmentShift = 10
	maxSegmentShift = 24
	magic           = "MMBE"
	version         = 1
	algAES256GCM    = 1
	nonceSize       = 12
	wrappedSize     = KeySize + TagSize
	// wrapAADSize is the header prefix the key wrap authenticates, with
	// the object key after it.
	wrapAADSize = 40
)

var (
	// ErrCorrupt is wrapped by errors about an object that starts like an
	// envelope but is not a valid one, or whose ciphertext fails
	// authentication under the right key: truncated, altered or moved to
	// another key.
	ErrCorrupt = errors.New("corrupt encrypted object")
	// ErrUnknownKey is wrapped by errors about an object sealed under a
	// key id the keyring does not hold (or with no keyring at all). The
	// message names the key id, never key material.
	ErrUnknownKey = errors.New("encryption key not available")
	// ErrWrongKey is wrapped by errors about an object whose data key does
	// not unwrap under the keyring's key of that id: the key material
	// differs from the one it was sealed with (or the header was altered).
	ErrWrongKey = errors.New("encryption key does not match")
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func corrupt(key, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrCorrupt, key, fmt.Sprintf(format, args...))
}

// IsSealed reports whether b, the first bytes of an object, start with the
// envelope magic. A plaintext object that begins with it would be taken
// for a corrupt envelope; no object Mamba writes does.
func IsSealed(b []byte) bool { return len(b) >= len(magic) && string(b[:len(magic)]) == magic }

// Header is a decoded, checked envelope header.
type Header struct {
	// KeyID names the master key that wraps the data key.
	KeyID string
	// SegmentSize is the plaintext bytes per segment.
	SegmentSize int
	raw         [HeaderSize]byte
}

// ParseHeader decodes and checks the header in the first HeaderSize bytes
// of b, the start of the object at key (named in errors). Errors wrap
// ErrCorrupt.
func ParseHeader(key string, b []byte) (Header, error) {
	var h Header
	if len(b) < HeaderSize {
		return h, corrupt(key, "envelope header is %d bytes, want %d", len(b), HeaderSize)
	}
	b = b[:HeaderSize]
	if !IsSealed(b) {
		return h, corrupt(key, "bad envelope magic %q", b[:4])
	}
	if b[4] != version {
		return h, corrupt(key, "unknown envelope version %d", b[4])
	}
	if crc, want := crc32.Checksum(b[:HeaderSize-4], castagnoli), binary.BigEndian.Uint32(b[HeaderSize-4:]); crc != want {
		return h, corrupt(key, "envelope header crc32c %08x does not match computed %08x", want, crc)
	}
	if b[5] != algAES256GCM {
		return h, corrupt(key, "unknown envelope algorithm %d", b[5])
	}
	if b[6] < minSegmentShift || b[6] > maxSegmentShift {
		return h, corrupt(key, "segment size 2^%d not in [2^%d, 2^%d]", b[6], minSegmentShift, maxSegmentShift)
	}
	idLen := int(b[7])
	if idLen == 0 || idLen > MaxKeyIDLen {
		return h, corrupt(key, "key id length %d not in [1, %d]", idLen, MaxKeyIDLen)
	}
	id := string(b[8 : 8+idLen])
	if err := ValidateKeyID(id); err != nil {
		return h, corrupt(key, "%v", err)
	}
	for _, c := range b[8+idLen : 8+MaxKeyIDLen] {
		if c != 0 {
			return h, corrupt(key, "nonzero padding after the key id")
		}
	}
	h.KeyID = id
	h.SegmentSize = 1 << b[6]
	copy(h.raw[:], b)
	return h, nil
}

// object is what opening an envelope header gives: the data key's cipher
// and the segment size. It is safe for concurrent use.
type object struct {
	keyID string
	aead  cipher.AEAD
	seg   int
}

func newGCM(key []byte) cipher.AEAD {
	block, err := aes.NewCipher(key)
	if err != nil {
		panic(fmt.Sprintf("envelope: aes key: %v", err)) // keys are always KeySize bytes
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		panic(fmt.Sprintf("envelope: gcm: %v", err))
	}
	return aead
}

// unwrap opens the data key of the object at key whose header is h with
// the keyring's key of h's id.
func (h *Header) unwrap(ring *Keyring, key string) (*object, error) {
	master, err := ring.key(h.KeyID)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", key, err)
	}
	aad := append(h.raw[:wrapAADSize:wrapAADSize], key...)
	nonce := h.raw[wrapAADSize : wrapAADSize+nonceSize]
	wrapped := h.raw[wrapAADSize+nonceSize : wrapAADSize+nonceSize+wrappedSize]
	dek, err := newGCM(master).Open(nil, nonce, wrapped, aad)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w: key id %q cannot unwrap its data key (other key material under that id, or an altered or moved object)", key, ErrWrongKey, h.KeyID)
	}
	return &object{keyID: h.KeyID, aead: newGCM(dek), seg: h.SegmentSize}, nil
}

// nonce returns the nonce of segment i: its index, and 1 in the last byte
// for the final segment, so that segments can be neither reordered nor
// dropped from the end without failing authentication.
func segmentNonce(i int64, final bool) []byte {
	var n [nonceSize]byte
	binary.BigEndian.PutUint64(n[:8], uint64(i))
	if final {
		n[nonceSize-1] = 1
	}
	return n[:]
}

// sealedSize returns the envelope size of a plaintext of n bytes.
func sealedSize(n, seg int64) int64 {
	segments := max(1, (n+seg-1)/seg)
	return HeaderSize + n + segments*TagSize
}

// PlainSize returns the plaintext size of an envelope of stored bytes
// whose segments hold seg bytes, or -1 when no envelope has that size.
func PlainSize(stored, seg int64) int64 {
	body := stored - HeaderSize
	if body < TagSize || seg <= 0 {
		return -1
	}
	segments := (body + seg + TagSize - 1) / (seg + TagSize)
	if last := body - (segments-1)*(seg+TagSize); last < TagSize {
		return -1
	}
	return body - segments*TagSize
}

// Seal encrypts plaintext, the object to be stored at key, under the
// keyring's active key, with a fresh random data key.
func Seal(ring *Keyring, key string, plaintext []byte) ([]byte, error) {
	out, _, err := seal(ring, key, plaintext)
	return out, err
}

func seal(ring *Keyring, key string, plaintext []byte) ([]byte, *object, error) {
	id := ring.Active()
	master, err := ring.key(id)
	if err != nil {
		return nil, nil, err
	}
	var dek [KeySize]byte
	if _, err := rand.Read(dek[:]); err != nil {
		return nil, nil, fmt.Errorf("seal %s: data key: %w", key, err)
	}
	seg := 1 << SegmentShift
	out := make([]byte, HeaderSize, sealedSize(int64(len(plaintext)), int64(seg)))
	h := out[:HeaderSize]
	copy(h, magic)
	h[4], h[5], h[6], h[7] = version, algAES256GCM, SegmentShift, byte(len(id))
	copy(h[8:], id)
	nonce := h[wrapAADSize : wrapAADSize+nonceSize]
	if _, err := rand.Read(nonce); err != nil {
		return nil, nil, fmt.Errorf("seal %s: wrap nonce: %w", key, err)
	}
	aad := append(h[:wrapAADSize:wrapAADSize], key...)
	newGCM(master).Seal(h[wrapAADSize+nonceSize:wrapAADSize+nonceSize], nonce, dek[:], aad)
	binary.BigEndian.PutUint32(h[HeaderSize-4:], crc32.Checksum(h[:HeaderSize-4], castagnoli))

	obj := &object{keyID: id, aead: newGCM(dek[:]), seg: seg}
	for i := int64(0); ; i++ {
		start := i * int64(seg)
		end := min(start+int64(seg), int64(len(plaintext)))
		final := end == int64(len(plaintext))
		out = obj.aead.Seal(out, segmentNonce(i, final), plaintext[start:end], nil)
		if final {
			break
		}
	}
	return out, obj, nil
}

// Open decrypts the whole envelope b of the object at key. Every segment
// is authenticated and the last one must be the final one, so a truncated,
// altered or reordered object fails with ErrCorrupt; a key the keyring
// lacks fails with ErrUnknownKey, other key material with ErrWrongKey. b
// is not modified.
func Open(ring *Keyring, key string, b []byte) ([]byte, error) {
	return openInPlace(ring, key, bytes.Clone(b))
}

// openInPlace is Open decrypting in b's own memory, which it overwrites:
// for buffers the caller owns, such as a fresh GET's.
func openInPlace(ring *Keyring, key string, b []byte) ([]byte, error) {
	h, err := ParseHeader(key, b)
	if err != nil {
		return nil, err
	}
	if PlainSize(int64(len(b)), int64(h.SegmentSize)) < 0 {
		return nil, corrupt(key, "%d bytes is no envelope's size", len(b))
	}
	obj, err := h.unwrap(ring, key)
	if err != nil {
		return nil, err
	}
	pt, final, err := obj.openSegments(key, b[HeaderSize:], 0)
	if err != nil {
		return nil, err
	}
	if !final {
		return nil, corrupt(key, "envelope ends without its final segment")
	}
	return pt, nil
}

// openSegments decrypts body, consecutive segments starting with segment
// first, in place: it returns the plaintext at the start of body (whose
// bytes it overwrites) and whether the final segment was seen. Every
// segment but the last must be full and not final. The last one is final
// when it is short; when it is full it is tried as not final first, then
// as final.
func (o *object) openSegments(key string, body []byte, first int64) ([]byte, bool, error) {
	full := o.seg + TagSize
	n := 0 // plaintext bytes so far, at body[:n]
	for i := first; ; i++ {
		k := i - first
		start := int(k) * full
		if start >= len(body) {
			return body[:n], false, nil
		}
		ct := body[start:min(start+full, len(body))]
		last := start+len(ct) == len(body)
		if len(ct) < TagSize {
			return nil, false, corrupt(key, "segment %d is %d bytes, shorter than its tag", i, len(ct))
		}
		final := len(ct) < full
		if final && !last {
			return nil, false, corrupt(key, "segment %d is short but not the last", i)
		}
		var saved []byte
		if !final && last {
			// Could be either; a failed Open clears its output, which
			// here is the ciphertext, so keep a copy for the second try.
			saved = bytes.Clone(ct)
		}
		// Decrypting in place needs the exact overlap GCM allows; the
		// plaintext then moves down to follow the previous segment's.
		pt, err := o.aead.Open(ct[:0], segmentNonce(i, final), ct, nil)
		if err != nil && saved != nil {
			final = true
			copy(ct, saved)
			pt, err = o.aead.Open(ct[:0], segmentNonce(i, true), ct, nil)
		}
		if err != nil {
			return nil, false, corrupt(key, "segment %d fails authentication", i)
		}
		n += copy(body[n:], pt)
		if final {
			return body[:n], true, nil
		}
	}
}
