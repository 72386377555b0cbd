package wire

import (
	"encoding/base64"
	"unicode/utf8"
)

// This file is the one rule for a record's byte strings in the API's JSON
// (docs/api.md, "Fetch" and "Produce"): the HTTP API's fetch answers, the SDK's
// JSON produce requests and `mamba consume -o json` all write records
// through it, so the three agree.

// JSONRecord is a fetched record in the API's JSON: what a fetch answer
// lists and, with its topic and partition added, what `mamba consume -o
// json` prints.
type JSONRecord struct {
	Offset int64 `json:"offset"`
	// Timestamp is in Unix milliseconds.
	Timestamp int64 `json:"timestamp"`
	// Key is null for a record without a key.
	Key   *string `json:"key"`
	Value string  `json:"value"`
	// Headers is never null: a record without headers has an empty list.
	Headers []JSONHeader `json:"headers"`
	// Encoding is "base64" when key, value and header values are base64.
	Encoding string `json:"encoding,omitempty"`
}

// NewJSONRecord returns a record in its JSON form, its byte strings
// written by the rule of JSONBytes.
func NewJSONRecord[H HeaderLike](b64 bool, offset, timestampMillis int64, key, value []byte, hs []H) JSONRecord {
	enc, encoding := JSONBytes(b64, key, value, hs)
	out := JSONRecord{Offset: offset, Timestamp: timestampMillis, Value: enc(value), Headers: JSONHeaders(hs, enc), Encoding: encoding}
	if key != nil {
		k := enc(key)
		out.Key = &k
	}
	return out
}

// EncodingBase64 is the "encoding" of a JSON record whose key, value and
// header values are base64 (standard alphabet, padded).
const EncodingBase64 = "base64"

// JSONHeader is one record header in JSON. A record's headers are a list
// of them, which keeps their order and repeated names.
type JSONHeader struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// plainHeader is the shape every header type of the module has.
type plainHeader = struct {
	Name  string
	Value []byte
}

// HeaderLike is any header type of the module: chunk.Header,
// client.Header and Header share one shape.
type HeaderLike interface{ ~plainHeader }

// JSONBytes says how a record's byte strings are written in JSON: as text,
// unless b64 is asked for or any of key, value and header values is not
// valid UTF-8, in which case all of them are base64, so that a reader
// decodes them one way. It returns the encoder and the record's "encoding"
// field ("" for text, EncodingBase64). Header names are always text: every
// format requires them to be UTF-8.
func JSONBytes[H HeaderLike](b64 bool, key, value []byte, hs []H) (enc func([]byte) string, encoding string) {
	if !b64 {
		b64 = !utf8.Valid(key) || !utf8.Valid(value)
		for _, h := range hs {
			b64 = b64 || !utf8.Valid(plainHeader(h).Value)
		}
	}
	if b64 {
		return base64.StdEncoding.EncodeToString, EncodingBase64
	}
	return func(b []byte) string { return string(b) }, ""
}

// JSONHeaders returns hs in their JSON form, each value written by enc. It
// never returns nil, so a record without headers has "headers":[].
func JSONHeaders[H HeaderLike](hs []H, enc func([]byte) string) []JSONHeader {
	out := make([]JSONHeader, len(hs))
	for i, h := range hs {
		plain := plainHeader(h)
		out[i] = JSONHeader{Key: plain.Name, Value: enc(plain.Value)}
	}
	return out
}
