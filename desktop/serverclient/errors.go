package serverclient

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"connectrpc.com/connect"
)

// Kinds of failure, matched with errors.Is against the *Error a Client returns.
var (
	ErrWrongCredentials = errors.New("wrong email or password")
	ErrTooManyAttempts  = errors.New("too many attempts")
	ErrSessionExpired   = errors.New("session expired")
	ErrUnreachable      = errors.New("server unreachable")
	ErrNotLeadify       = errors.New("not a leadify server")
	ErrPermissionDenied = errors.New("permission denied")
)

// Error is a failed call. Error() is a plain-language message for the person
// using the app; errors.Is matches its kind (ErrWrongCredentials, …) and
// errors.As reaches the underlying *connect.Error.
type Error struct {
	kind  error
	msg   string
	cause error
	// RetryAfter is how long the server asked to wait (ErrTooManyAttempts), or zero.
	RetryAfter time.Duration
}

func (e *Error) Error() string        { return e.msg }
func (e *Error) Unwrap() error        { return e.cause }
func (e *Error) Is(target error) bool { return e.kind != nil && target == e.kind }

type operation int

const (
	opLogin   operation = iota // signing in: Unauthenticated means bad credentials
	opSession                  // an authenticated call: Unauthenticated means the token is dead
)

// classify turns a Connect error into an *Error with a message fit for the UI.
func classify(err error, op operation) error {
	code := connect.CodeOf(err)
	if errors.Is(err, context.DeadlineExceeded) {
		code = connect.CodeDeadlineExceeded
	}
	e := &Error{cause: err}
	switch code {
	case connect.CodeUnauthenticated:
		if op == opLogin {
			e.kind, e.msg = ErrWrongCredentials, "wrong email or password"
		} else {
			e.kind, e.msg = ErrSessionExpired, "your session has ended — please sign in again"
		}
	case connect.CodeResourceExhausted:
		e.kind, e.RetryAfter = ErrTooManyAttempts, retryAfter(err, time.Now())
		e.msg = "too many attempts, try again in " + minutes(e.RetryAfter)
	case connect.CodeUnavailable, connect.CodeDeadlineExceeded:
		e.kind = ErrUnreachable
		if op == opLogin {
			e.msg = "server unreachable — check the address and your connection"
		} else {
			e.msg = "server unreachable — working offline"
		}
	case connect.CodeUnimplemented:
		e.kind, e.msg = ErrNotLeadify, "no Leadify server answers at this address"
	case connect.CodePermissionDenied:
		e.kind, e.msg = ErrPermissionDenied, "you are not allowed to do this"
	case connect.CodeInvalidArgument, connect.CodeFailedPrecondition, connect.CodeNotFound:
		e.msg = message(err)
	default:
		e.msg = fmt.Sprintf("the server could not complete the request (%s)", code)
	}
	return e
}

// retryAfter is how long the server asked to wait after ResourceExhausted: its
// Retry-After header (seconds) or, failing that, the RFC 3339 time that ends its
// message ("… try again after 2026-05-01T10:57:00Z"). Zero when it said neither.
func retryAfter(err error, now time.Time) time.Duration {
	var ce *connect.Error
	if !errors.As(err, &ce) {
		return 0
	}
	if secs, err := strconv.Atoi(strings.TrimSpace(ce.Meta().Get("Retry-After"))); err == nil && secs > 0 {
		return time.Duration(secs) * time.Second
	}
	fields := strings.Fields(ce.Message())
	if len(fields) == 0 {
		return 0
	}
	until, perr := time.Parse(time.RFC3339, strings.TrimRight(fields[len(fields)-1], "."))
	if perr != nil || !until.After(now) {
		return 0
	}
	return until.Sub(now)
}

// minutes renders a wait as whole minutes, rounded up: "1 minute", "15 minutes".
func minutes(d time.Duration) string {
	if d <= 0 {
		return "a few minutes"
	}
	n := int((d + time.Minute - 1) / time.Minute)
	if n == 1 {
		return "1 minute"
	}
	return strconv.Itoa(n) + " minutes"
}

func message(err error) string {
	var ce *connect.Error
	if errors.As(err, &ce) && ce.Message() != "" {
		return ce.Message()
	}
	return "the server refused the request"
}
