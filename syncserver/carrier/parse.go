package carrier

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Morocco is the carriers' local time zone (Africa/Casablanca, or UTC+1 when
// the system has no zone database).
var Morocco = func() *time.Location {
	if loc, err := time.LoadLocation("Africa/Casablanca"); err == nil {
		return loc
	}
	return time.FixedZone("+01", 3600)
}()

// ParseLocalTime reads a carrier's local timestamp, tolerating the quirks
// seen in the wild: spaces around the colons ("13:17 :11"), missing seconds,
// a "T" separator, a unix time in seconds. It returns the zero time and false
// for anything else.
func ParseLocalTime(s string) (time.Time, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, false
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n <= 0 || n > 1<<40 {
			return time.Time{}, false
		}
		return time.Unix(n, 0).UTC(), true
	}
	s = strings.Join(strings.Fields(strings.ReplaceAll(s, ":", " : ")), " ")
	s = strings.ReplaceAll(s, " : ", ":")
	for _, layout := range []string{time.RFC3339, "2006-01-02 15:04:05", "2006-01-02T15:04:05", "2006-01-02 15:04", "02/01/2006 15:04:05", "02/01/2006 15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, Morocco); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// Flex is a JSON value carriers send as a number, a string or a boolean
// interchangeably (Coliix "status", Ameex ids). It keeps the text form.
type Flex string

// UnmarshalJSON accepts a string, a number, a boolean or null.
func (f *Flex) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*f = Flex(strings.TrimSpace(s))
		return nil
	}
	if string(b) == "null" {
		*f = ""
		return nil
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	switch v.(type) {
	case float64, bool:
		*f = Flex(b)
		return nil
	}
	return fmt.Errorf("carrier: expected a string, number or boolean, got %.40s", b)
}

// String returns the text form ("200", "true", "abc").
func (f Flex) String() string { return string(f) }
