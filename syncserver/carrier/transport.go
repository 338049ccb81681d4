package carrier

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
)

// MaxResponseBytes bounds what a carrier response may hold; more is treated
// as a broken answer.
const MaxResponseBytes = 4 << 20

// Response is a carrier's HTTP answer whose body looks like JSON.
type Response struct {
	Status int
	Body   []byte
}

// Do sends req with client (http.DefaultClient if nil) on behalf of carrier
// name's operation op. It returns an *Error wrapping ErrTimeout when the
// context deadline or the client timeout passes, ErrUnavailable when the
// connection fails or the body is not JSON (an HTML error page from a proxy,
// an empty body) — whatever the HTTP status. Callers interpret the status
// and the JSON.
func Do(client *http.Client, name, op string, req *http.Request) (Response, error) {
	if client == nil {
		client = http.DefaultClient
	}
	fail := func(kind error, code, msg string, err error) (Response, error) {
		return Response{}, &Error{Carrier: name, Op: op, Kind: kind, Code: code, Msg: msg, Err: err}
	}
	resp, err := client.Do(req)
	if err != nil {
		if isTimeout(req.Context(), err) {
			return fail(ErrTimeout, "", "", err)
		}
		return fail(ErrUnavailable, "", "", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBytes+1))
	if err != nil {
		if isTimeout(req.Context(), err) {
			return fail(ErrTimeout, httpCode(resp.StatusCode), "reading the answer", err)
		}
		return fail(ErrUnavailable, httpCode(resp.StatusCode), "reading the answer", err)
	}
	if len(body) > MaxResponseBytes {
		return fail(ErrUnavailable, httpCode(resp.StatusCode), "answer too large", nil)
	}
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 || (trimmed[0] != '{' && trimmed[0] != '[') {
		return fail(ErrUnavailable, httpCode(resp.StatusCode), "not a JSON answer: "+Describe(trimmed), nil)
	}
	return Response{Status: resp.StatusCode, Body: body}, nil
}

func httpCode(status int) string { return "HTTP " + strconv.Itoa(status) }

func isTimeout(ctx context.Context, err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

var titleRE = regexp.MustCompile(`(?is)<title[^>]*>(.*?)</title>`)

// Describe summarises a non-JSON body for an error message: an HTML page's
// title, or the first 80 bytes.
func Describe(body []byte) string {
	if len(body) == 0 {
		return "empty body"
	}
	if m := titleRE.FindSubmatch(body); m != nil {
		return fmt.Sprintf("HTML page %q", strings.TrimSpace(string(m[1])))
	}
	if len(body) > 80 {
		body = body[:80]
	}
	return strconv.Quote(string(body))
}
