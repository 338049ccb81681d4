package syncer

import (
	"time"

	"github.com/leadify/leadify/shared/lead"
)

func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func statusText(s lead.Status) string {
	if !s.Valid() {
		return ""
	}
	return s.String()
}
