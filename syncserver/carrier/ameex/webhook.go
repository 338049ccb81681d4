package ameex

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/leadify/leadify/syncserver/carrier"
)

func carrierTrim(s string) string { return strings.TrimSpace(s) }

// ParseWebhook reads an Ameex status callback (a form POST, unsigned):
// CODE, STATUT, STATUT_NAME, STATUT_S, STATUT_S_NAME, COMMENT, DATE. It
// fails without CODE or STATUT; an unlisted STATUT is returned with Known
// false.
func ParseWebhook(v url.Values) (carrier.Event, error) {
	code := strings.TrimSpace(v.Get("CODE"))
	statut := strings.TrimSpace(v.Get("STATUT"))
	if code == "" || statut == "" {
		return carrier.Event{}, fmt.Errorf("ameex webhook: missing CODE or STATUT")
	}
	ev := event(code, statut, v.Get("STATUT_S"))
	ev.At, _ = carrier.ParseLocalTime(v.Get("DATE"))
	note := []string{}
	for _, f := range []string{"STATUT_NAME", "STATUT_S_NAME", "COMMENT"} {
		if s := strings.TrimSpace(v.Get(f)); s != "" {
			note = append(note, s)
		}
	}
	ev.Note = strings.Join(note, " — ")
	return ev, nil
}
