package carrier

import (
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"

	"github.com/leadify/leadify/shared/parcel"
)

// Table maps a carrier's status strings to canonical statuses. Lookups are
// exact after [Fold]: "Livré ", "LIVRE" and "livré" are the same key, but
// "Confirmer par le livreur" only matches itself — never a substring.
type Table struct {
	byKey map[string]parcel.Status
	raw   []string
}

// NewTable builds a table from carrier strings to statuses. It panics if two
// strings fold to the same key with different statuses or a status is
// invalid: tables are package-level literals, checked by tests.
func NewTable(entries map[string]parcel.Status) *Table {
	t := &Table{byKey: make(map[string]parcel.Status, len(entries))}
	for raw, s := range entries {
		if !s.Valid() {
			panic("carrier: invalid status for " + raw)
		}
		k := Fold(raw)
		if prev, ok := t.byKey[k]; ok && prev != s {
			panic("carrier: conflicting statuses for " + raw)
		}
		t.byKey[k] = s
		t.raw = append(t.raw, raw)
	}
	return t
}

// Lookup returns the canonical status of a carrier status string, and false
// for a string the table does not list.
func (t *Table) Lookup(raw string) (parcel.Status, bool) {
	s, ok := t.byKey[Fold(raw)]
	return s, ok
}

// Strings returns the carrier strings the table was built from.
func (t *Table) Strings() []string { return append([]string(nil), t.raw...) }

// Event builds an Event for raw (trimmed) with its mapped status; an
// unlisted raw gives Known false and a zero Status.
func (t *Table) Event(code, raw string) Event {
	raw = strings.TrimSpace(raw)
	s, ok := t.Lookup(raw)
	return Event{Code: strings.TrimSpace(code), Raw: raw, Status: s, Known: ok}
}

// Fold is the matching key of a carrier status string: trimmed, lower case,
// Latin accents removed, and runs of spaces, underscores and hyphens turned
// into one space ("Numero_Erroné" and "numero errone" match).
func Fold(s string) string {
	var b strings.Builder
	space := false
	for _, r := range norm.NFD.String(strings.ToValidUTF8(s, "\uFFFD")) {
		switch {
		case unicode.Is(unicode.Mn, r):
			continue
		case unicode.IsSpace(r) || r == '_' || r == '-':
			space = b.Len() > 0
			continue
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		b.WriteRune(unicode.ToLower(r))
	}
	return b.String()
}
