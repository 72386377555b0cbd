package httpapi

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"

	"github.com/mambamq/mamba/internal/wire"
)

// apiHeader is one record header in JSON (wire.JSONHeader). A record's
// headers are a list of them, which keeps their order and repeated names:
// fetch answers in that form, and produce accepts it. Value follows the
// encoding of the record's key and value (text, or base64 under
// format=base64 or when the record says "encoding":"base64").
type apiHeader = wire.JSONHeader

// apiProduceHeaders are a produced record's headers, in either form the
// API accepts: the list of {"key","value"} objects, kept in order with
// its repeats, or an object of names to values, whose headers are sorted
// by name because JSON objects have no order (so equal requests store
// equal records). null or absent means none.
type apiProduceHeaders struct {
	list []apiHeader
	// fromObject is set for the object form; error messages then name a
	// header by its name rather than its index.
	fromObject bool
}

func (hs *apiProduceHeaders) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case bytes.Equal(b, []byte("null")):
		*hs = apiProduceHeaders{}
		return nil
	case len(b) > 0 && b[0] == '{':
		var m map[string]string
		if err := json.Unmarshal(b, &m); err != nil {
			return invalidf("headers: want an object of names to string values: %v", strings.TrimPrefix(err.Error(), "json: "))
		}
		list := make([]apiHeader, 0, len(m))
		for k, v := range m {
			list = append(list, apiHeader{Key: k, Value: v})
		}
		slices.SortFunc(list, func(a, b apiHeader) int { return strings.Compare(a.Key, b.Key) })
		*hs = apiProduceHeaders{list: list, fromObject: true}
		return nil
	case len(b) > 0 && b[0] == '[':
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		var list []apiHeader
		if err := dec.Decode(&list); err != nil {
			return invalidf(`headers: want a list of {"key","value"} objects of strings: %v`, strings.TrimPrefix(err.Error(), "json: "))
		}
		*hs = apiProduceHeaders{list: list}
		return nil
	}
	return invalidf(`headers: want a list of {"key","value"} objects or an object of names to values`)
}
