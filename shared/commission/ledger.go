package commission

import (
	"fmt"

	"github.com/leadify/leadify/shared/money"
)

// EntryKind tells an original entry from the entry that reverses it.
type EntryKind string

// The entry kinds. A ledger holds at most one entry of each kind per rule and
// parcel: that key is what makes commission runs re-runnable.
const (
	KindEarn     EntryKind = "earn"
	KindReversal EntryKind = "reversal"
)

// Key identifies a ledger entry: re-posting the same key changes nothing.
type Key struct {
	RuleID   string
	ParcelID string
	Kind     EntryKind
}

// Posting is an entry as written to the ledger.
type Posting struct {
	ParcelID string
	Kind     EntryKind
	Entry
}

// Key returns the posting's idempotency key.
func (p Posting) Key() Key { return Key{RuleID: p.RuleID, ParcelID: p.ParcelID, Kind: p.Kind} }

// Reverse returns the entry that cancels e exactly: the same rule and base,
// the opposite amount. It fails with [money.ErrOverflow] for the one amount
// whose opposite does not fit.
func Reverse(e Entry) (Entry, error) {
	neg, err := money.Amount(0).Sub(e.Amount)
	if err != nil {
		return Entry{}, err
	}
	r := e
	r.Amount = neg
	r.Calculation = fmt.Sprintf("annulation : %s", e.Calculation)
	return r, nil
}

// Ledger is the in-memory model of the commission ledger: append-only,
// idempotent by [Key], with reversals as new entries. Postgres enforces the
// same with a unique key; this model is what the property tests check the
// rules against.
type Ledger struct {
	entries []Posting
	index   map[Key]int
}

// Post appends the order's entries as earn postings; entries already posted
// for the same rule and parcel are skipped. It returns how many were new.
func (l *Ledger) Post(parcelID string, entries []Entry) int {
	if l.index == nil {
		l.index = make(map[Key]int)
	}
	n := 0
	for _, e := range entries {
		k := Key{RuleID: e.RuleID, ParcelID: parcelID, Kind: KindEarn}
		if _, ok := l.index[k]; ok {
			continue
		}
		l.index[k] = len(l.entries)
		l.entries = append(l.entries, Posting{ParcelID: parcelID, Kind: KindEarn, Entry: e})
		n++
	}
	return n
}

// ReverseParcel appends a reversal for every earn posting of the parcel not
// yet reversed, and returns how many it appended.
func (l *Ledger) ReverseParcel(parcelID string) (int, error) {
	n := 0
	for i := range len(l.entries) {
		p := l.entries[i]
		if p.ParcelID != parcelID || p.Kind != KindEarn {
			continue
		}
		k := Key{RuleID: p.RuleID, ParcelID: parcelID, Kind: KindReversal}
		if _, ok := l.index[k]; ok {
			continue
		}
		r, err := Reverse(p.Entry)
		if err != nil {
			return n, err
		}
		l.index[k] = len(l.entries)
		l.entries = append(l.entries, Posting{ParcelID: parcelID, Kind: KindReversal, Entry: r})
		n++
	}
	return n, nil
}

// Postings returns the ledger's postings in the order they were appended.
func (l *Ledger) Postings() []Posting { return l.entries }

// Balance returns the sum of every posting of the beneficiary. It fails with
// [money.ErrOverflow] if the sum does not fit.
func (l *Ledger) Balance(b Beneficiary) (money.Amount, error) {
	var total money.Amount
	for _, p := range l.entries {
		if p.Beneficiary != b {
			continue
		}
		var err error
		if total, err = total.Add(p.Amount); err != nil {
			return 0, err
		}
	}
	return total, nil
}
