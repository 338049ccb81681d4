package sendit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"

	"github.com/leadify/leadify/syncserver/carrier"
)

// ParseWebhook reads a Sendit status callback: a JSON object (or a form
// body) with code, status, and optionally date or updated_at and comment,
// possibly wrapped in "data". It fails without a code or a status; an
// unlisted status is returned with Known false.
func ParseWebhook(contentType string, body []byte) (carrier.Event, error) {
	var f struct {
		Code      string          `json:"code"`
		Status    string          `json:"status"`
		Date      string          `json:"date"`
		UpdatedAt string          `json:"updated_at"`
		Comment   string          `json:"comment"`
		Data      json.RawMessage `json:"data"`
	}
	trimmed := bytes.TrimSpace(body)
	if strings.Contains(contentType, "json") || (len(trimmed) > 0 && trimmed[0] == '{') {
		if err := json.Unmarshal(trimmed, &f); err != nil {
			return carrier.Event{}, fmt.Errorf("sendit webhook: %w", err)
		}
		if f.Code == "" && len(f.Data) > 0 {
			data := f.Data
			f.Data = nil
			if err := json.Unmarshal(data, &f); err != nil {
				return carrier.Event{}, fmt.Errorf("sendit webhook data: %w", err)
			}
		}
	} else {
		v, err := url.ParseQuery(string(trimmed))
		if err != nil {
			return carrier.Event{}, fmt.Errorf("sendit webhook: %w", err)
		}
		f.Code, f.Status, f.Date, f.UpdatedAt, f.Comment = v.Get("code"), v.Get("status"), v.Get("date"), v.Get("updated_at"), v.Get("comment")
	}
	if strings.TrimSpace(f.Code) == "" || strings.TrimSpace(f.Status) == "" {
		return carrier.Event{}, fmt.Errorf("sendit webhook: missing code or status")
	}
	ev := Statuses.Event(f.Code, f.Status)
	if t, ok := carrier.ParseLocalTime(f.Date); ok {
		ev.At = t
	} else {
		ev.At, _ = carrier.ParseLocalTime(f.UpdatedAt)
	}
	ev.Note = strings.TrimSpace(f.Comment)
	return ev, nil
}
