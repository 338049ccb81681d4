package carrier

import (
	"errors"
	"fmt"
)

// The kinds of carrier failure. Every error a carrier client returns wraps
// exactly one of them (test with errors.Is) inside an *Error.
var (
	// ErrAuth: the carrier refused the credentials (or the account is
	// disabled). Retrying will not help until the seller fixes them.
	ErrAuth = errors.New("carrier refused the credentials")
	// ErrRejected: the carrier refused the operation (bad city, zero COD…).
	ErrRejected = errors.New("carrier rejected the request")
	// ErrNotFound: the carrier does not know the parcel.
	ErrNotFound = errors.New("carrier does not know the parcel")
	// ErrUnavailable: the carrier answered with something other than its
	// API (an HTML error page, a 5xx, garbage) or the connection failed.
	// The outcome of a write is unknown.
	ErrUnavailable = errors.New("carrier unavailable")
	// ErrTimeout: the carrier did not answer in time. The outcome of a
	// write is unknown.
	ErrTimeout = errors.New("carrier timed out")
	// ErrUnsupported: the carrier has no API for this operation.
	ErrUnsupported = errors.New("operation not supported by the carrier")
	// ErrUnmappedCity: the parcel's city has no counterpart at the carrier.
	ErrUnmappedCity = errors.New("city not served by the carrier")
)

// Error is a failed carrier call.
type Error struct {
	Carrier string // "coliix", …
	Op      string // "create", "track", …
	Kind    error  // one of the Err* kinds above
	Code    string // the carrier's own error code or HTTP status, if any
	Msg     string // the carrier's message, or a description of what came back
	Err     error  // the underlying cause (network error, JSON error), if any
}

func (e *Error) Error() string {
	s := fmt.Sprintf("%s %s: %v", e.Carrier, e.Op, e.Kind)
	if e.Code != "" {
		s += " (" + e.Code + ")"
	}
	if e.Msg != "" {
		s += ": " + e.Msg
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the kind and the cause, so errors.Is matches both.
func (e *Error) Unwrap() []error {
	if e.Err == nil {
		return []error{e.Kind}
	}
	return []error{e.Kind, e.Err}
}

// Retryable reports whether err leaves the outcome unknown and a retry (or,
// for a write, a reconciliation first) may succeed: ErrUnavailable or
// ErrTimeout.
func Retryable(err error) bool {
	return errors.Is(err, ErrUnavailable) || errors.Is(err, ErrTimeout)
}

// UnmappedCityError names the city a carrier does not serve; it wraps
// ErrUnmappedCity. It is an error on the lead, fixed by editing its city.
type UnmappedCityError struct {
	Carrier string
	CityID  string
}

func (e *UnmappedCityError) Error() string {
	return fmt.Sprintf("%s: no carrier city for %q; edit the lead's city", e.Carrier, e.CityID)
}

// Unwrap returns ErrUnmappedCity.
func (e *UnmappedCityError) Unwrap() error { return ErrUnmappedCity }
