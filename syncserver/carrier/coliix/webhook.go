package coliix

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/leadify/leadify/syncserver/carrier"
)

func errorsIsNotFound(err error) bool { return errors.Is(err, carrier.ErrNotFound) }

// ParseWebhook reads a Coliix status callback from its fields — the query
// of a GET or the body of a form POST (both are seen): code (tracking),
// state, datereported, note. It fails for a callback without a code or a
// state; an unlisted state is returned with Known false.
func ParseWebhook(v url.Values) (carrier.Event, error) {
	code := strings.TrimSpace(v.Get("code"))
	state := strings.TrimSpace(v.Get("state"))
	if code == "" || state == "" {
		return carrier.Event{}, fmt.Errorf("coliix webhook: missing code or state")
	}
	ev := Statuses.Event(code, state)
	ev.At, _ = carrier.ParseLocalTime(v.Get("datereported"))
	ev.Note = strings.TrimSpace(v.Get("note"))
	return ev, nil
}
