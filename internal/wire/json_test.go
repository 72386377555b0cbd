package wire

import (
	"encoding/json"
	"testing"
)

func TestJSONBytes(t *testing.T) {
	for _, tc := range []struct {
		name         string
		b64          bool
		key, value   []byte
		headers      []Header
		wantEncoding string
		wantKey      string
		wantHeaders  string
	}{
		{"text", false, []byte("k"), []byte("v"), []Header{{"a", []byte("1")}, {"a", []byte("2")}}, "", "k",
			`[{"key":"a","value":"1"},{"key":"a","value":"2"}]`},
		{"asked for base64", true, []byte("k"), []byte("v"), []Header{{"a", []byte("1")}}, EncodingBase64, "aw==",
			`[{"key":"a","value":"MQ=="}]`},
		{"binary value", false, []byte("k"), []byte{0xff}, nil, EncodingBase64, "aw==", `[]`},
		{"binary header value", false, []byte("k"), []byte("v"), []Header{{"h", []byte{0xc3}}}, EncodingBase64, "aw==",
			`[{"key":"h","value":"ww=="}]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			enc, encoding := JSONBytes(tc.b64, tc.key, tc.value, tc.headers)
			if encoding != tc.wantEncoding {
				t.Errorf("encoding = %q, want %q", encoding, tc.wantEncoding)
			}
			if got := enc(tc.key); got != tc.wantKey {
				t.Errorf("key = %q, want %q", got, tc.wantKey)
			}
			b, err := json.Marshal(JSONHeaders(tc.headers, enc))
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != tc.wantHeaders {
				t.Errorf("headers = %s, want %s", b, tc.wantHeaders)
			}
		})
	}
}
