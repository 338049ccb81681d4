package intake

import (
	"errors"
	"strings"
	"time"
)

// Casablanca is the sellers' time zone; dates without one are read in it.
// Morocco keeps UTC+1 all year apart from Ramadan, so a fixed zone is used
// when the system has no tz database.
var Casablanca = func() *time.Location {
	if loc, err := time.LoadLocation("Africa/Casablanca"); err == nil {
		return loc
	}
	return time.FixedZone("+01", 3600)
}()

var dateLayouts = []string{
	"2006-01-02 15:04:05", "2006-01-02 15:04", "2006-01-02", "2006-01-02T15:04:05Z07:00", "2006-01-02T15:04:05",
	"02/01/2006 15:04:05", "02/01/2006 15:04", "02/01/2006", "2/1/2006 15:04:05", "2/1/2006 15:04", "2/1/2006",
	"02-01-2006", "02.01.2006", "2/1/06", "02/01/06",
}

// ErrDate is returned for text that is not a date ParseDate reads.
var ErrDate = errors.New("not a date (use 31/12/2026 or 2026-12-31, with an optional time)")

// ParseDate reads the dates sellers type: ISO ("2026-11-06", "2026-11-06
// 11:37") and day-first ("02/11/2026", "2/11/26 10:00", "02-11-2026"), in
// Casablanca time unless the text names a zone. Month-first dates are not
// guessed: "11/02/2026" is the 11th of February. Years outside 2000–2100 fail.
func ParseDate(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if len(s) > 40 {
		return time.Time{}, ErrDate
	}
	for _, layout := range dateLayouts {
		if t, err := time.ParseInLocation(layout, s, Casablanca); err == nil {
			if t.Year() < 2000 || t.Year() > 2100 {
				return time.Time{}, ErrDate
			}
			return t, nil
		}
	}
	return time.Time{}, ErrDate
}
