package httpapi

import (
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/mambamq/mamba/ingest"
)

// Parsing of paths, query strings and headers. Only syntax is checked
// here; what the values mean is the service's to validate.

// invalidf returns an error wrapping ingest.ErrInvalidRequest.
func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ingest.ErrInvalidRequest, fmt.Sprintf(format, args...))
}

// pathTopic returns the {topic} path value. A name no topic can have
// names no resource: it is not found, and never reaches the service.
func pathTopic(r *http.Request) (string, error) {
	name := r.PathValue("topic")
	if !ingest.ValidTopicName(name) {
		return "", fmt.Errorf("%w: %q is not a valid topic name", ingest.ErrTopicNotFound, shorten(name))
	}
	return name, nil
}

// shorten cuts s for echoing in an error message.
func shorten(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}

// query parses the query string, refusing a malformed one.
func query(r *http.Request) (url.Values, error) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, invalidf("malformed query string: %v", err)
	}
	return q, nil
}

// queryChoice returns the value of the query parameter name, which must be
// one of choices; def when it is absent. An empty value is refused like
// any other value not in choices.
func queryChoice(q url.Values, name, def string, choices ...string) (string, error) {
	vs, ok := q[name]
	if !ok {
		return def, nil
	}
	if !slices.Contains(choices, vs[0]) {
		return "", invalidf("%s %q: want %s", name, shorten(vs[0]), strings.Join(choices, " or "))
	}
	return vs[0], nil
}

// queryInt parses the integer query parameter name, which must lie in
// [lo, hi]; ok is false when it is absent.
func queryInt(q url.Values, name string, lo, hi int64) (v int64, ok bool, err error) {
	s, ok := q[name]
	if !ok {
		return 0, false, nil
	}
	v, err = strconv.ParseInt(s[0], 10, 64)
	if err != nil || v < lo || v > hi {
		return 0, false, invalidf("%s %q: want an integer from %d to %d", name, shorten(s[0]), lo, hi)
	}
	return v, true, nil
}

// base64Format reports whether q asks for format=base64; format=text is
// the default.
func base64Format(q url.Values) (bool, error) {
	f, err := queryChoice(q, "format", "text", "text", "base64")
	return f == "base64", err
}

// acceptsBinary reports whether the Accept header names the binary media
// type (with a q-value above zero).
func acceptsBinary(r *http.Request) bool {
	for _, v := range r.Header.Values("Accept") {
		for part := range strings.SplitSeq(v, ",") {
			mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
			if err != nil || mt != mediaBinary {
				continue
			}
			if q, ok := params["q"]; ok {
				if v, err := strconv.ParseFloat(q, 64); err != nil || v <= 0 {
					continue
				}
			}
			return true
		}
	}
	return false
}
