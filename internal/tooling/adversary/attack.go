package adversary

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Answer is what the node answered an attacking request.
type Answer struct {
	Status int
	// Code, Message and RequestID are the error body's fields (empty on
	// success, or when the body is not an error body).
	Code, Message, RequestID string
	Header                   http.Header
	Body                     []byte
	// Elapsed runs from the first byte sent to the whole answer read.
	Elapsed time.Duration
}

func (a Answer) String() string {
	if a.Code == "" {
		return fmt.Sprintf("%d", a.Status)
	}
	return fmt.Sprintf("%d %s (%s)", a.Status, a.Code, a.Message)
}

// Is reports whether the answer has the status and error code given; code
// "" asks for a success without an error body.
func (a Answer) Is(status int, code string) bool { return a.Status == status && a.Code == code }

// maxAnswerBytes bounds how much of an answer is kept: a join's answer
// lists up to 10,000 assignments.
const maxAnswerBytes = 64 << 20

// readAnswer reads resp into an Answer, parsing an error body.
func readAnswer(resp *http.Response, start time.Time) (Answer, error) {
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes))
	a := Answer{Status: resp.StatusCode, Header: resp.Header, Body: body, Elapsed: time.Since(start)}
	if err != nil {
		return a, fmt.Errorf("read answer: %w", err)
	}
	var e struct {
		Error *struct {
			Code      string `json:"code"`
			Message   string `json:"message"`
			RequestID string `json:"request_id"`
		} `json:"error"`
	}
	if resp.StatusCode >= 400 && json.Unmarshal(body, &e) == nil && e.Error != nil {
		a.Code, a.Message, a.RequestID = e.Error.Code, e.Error.Message, e.Error.RequestID
	}
	return a, nil
}

// Client sends attacking requests to one node with one token (or none).
type Client struct {
	// URL is the node's base URL.
	URL string
	// Token is sent as a bearer token when not empty.
	Token string
	HTTP  *http.Client
}

// Do sends method path with body (nil for none) and content type ctype.
func (c Client) Do(ctx context.Context, method, path, ctype string, body []byte, header ...string) (Answer, error) {
	var r io.Reader
	if body != nil {
		r = strings.NewReader(string(body))
	}
	req, err := http.NewRequestWithContext(ctx, method, c.URL+path, r)
	if err != nil {
		return Answer{}, err
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	start := time.Now()
	resp, err := hc.Do(req)
	if err != nil {
		return Answer{}, err
	}
	return readAnswer(resp, start)
}

// Raw sends a request by hand on its own connection: head is the request
// line and headers (without the blank line that ends them), and body
// writes the body, however slowly or incompletely it likes; it should
// return when ctx ends. The answer is read as soon as the node sends it,
// while body may still be writing; the connection is closed after.
func (c Client) Raw(ctx context.Context, head string, body func(ctx context.Context, w io.Writer) error) (Answer, error) {
	u, err := url.Parse(c.URL)
	if err != nil {
		return Answer{}, err
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", u.Host)
	if err != nil {
		return Answer{}, err
	}
	defer conn.Close()
	if c.Token != "" {
		head += "\r\nAuthorization: Bearer " + c.Token
	}
	start := time.Now()
	if _, err := io.WriteString(conn, head+"\r\nHost: "+u.Host+"\r\n\r\n"); err != nil {
		return Answer{}, err
	}
	bodyCtx, stop := context.WithCancel(ctx)
	defer stop()
	wrote := make(chan error, 1)
	go func() { wrote <- body(bodyCtx, conn) }()
	stopRead := context.AfterFunc(ctx, func() { _ = conn.SetReadDeadline(time.Now()) })
	defer stopRead()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		stop()
		if werr := <-wrote; werr != nil && !errors.Is(werr, net.ErrClosed) {
			err = fmt.Errorf("%w (writing the body: %v)", err, werr)
		}
		return Answer{}, fmt.Errorf("read answer: %w", err)
	}
	return readAnswer(resp, start)
}

// Stall writes prefix, then nothing more until ctx ends.
func Stall(prefix []byte) func(ctx context.Context, w io.Writer) error {
	return func(ctx context.Context, w io.Writer) error {
		if _, err := w.Write(prefix); err != nil {
			return err
		}
		<-ctx.Done()
		return nil
	}
}

// Trickle writes b one byte every interval until it is written or ctx
// ends.
func Trickle(b []byte, interval time.Duration) func(ctx context.Context, w io.Writer) error {
	return func(ctx context.Context, w io.Writer) error {
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for i := range b {
			if _, err := w.Write(b[i : i+1]); err != nil {
				return err
			}
			select {
			case <-ctx.Done():
				return nil
			case <-tick.C:
			}
		}
		return nil
	}
}

// Chunked writes body with chunked transfer encoding, in chunks of size
// bytes, then the last chunk, unless ctx ends first.
func Chunked(body []byte, size int) func(ctx context.Context, w io.Writer) error {
	return func(ctx context.Context, w io.Writer) error {
		bw := bufio.NewWriter(w)
		for len(body) > 0 && ctx.Err() == nil {
			n := min(size, len(body))
			if _, err := fmt.Fprintf(bw, "%x\r\n%s\r\n", n, body[:n]); err != nil {
				return err
			}
			body = body[n:]
		}
		if _, err := io.WriteString(bw, "0\r\n\r\n"); err != nil {
			return err
		}
		return bw.Flush()
	}
}
