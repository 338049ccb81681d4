package phone

import (
	"fmt"
	"regexp/syntax"
	"sync"
	"sync/atomic"

	"github.com/nyaruka/phonenumbers"
)

// The fast path for Moroccan numbers. Nearly every number a seller imports is
// Moroccan and written in one of a few ways ("0612345678", "06 12 34 56 78",
// "+212 6-12-34-56-78", "00212612345678", "212612345678", "612345678", …);
// reading those through the library costs a dozen regular expressions each.
// The fast path recognises only these layouts — digits with spaces, dots and
// dashes between them, an optional leading "+", and one of the prefixes
// "", "0", "212", "2120", "00212", "002120" ("+" for the last four: "+212",
// "+2120") before nine national digits starting with 5–8 — and gives exactly
// what the library gives for them; anything else goes to the library.
//
// What the library says of such a number (possible, valid, kind) depends only
// on its first few national digits: every Moroccan pattern in the metadata
// is a fixed-length prefix followed by any digits ("6(?:[0-79]\d|8[0-247-9])
// \d{6}"). maPrefix checks that of the metadata actually linked in, once,
// and the answer for each prefix is asked of the library the first time the
// prefix is seen (by parsing "+212" and the prefix padded with zeros) and
// kept. If the metadata ever holds a pattern of another shape, the fast path
// turns itself off and every number goes to the library.

// moroccanNSN returns the nine national digits of text when it is written in
// one of the fast path's layouts.
func moroccanNSN(text string) (string, bool) {
	var d [16]byte
	n, plus, last := 0, false, -1
	i := 0
	for i < len(text) && text[i] == ' ' {
		i++
	}
	if i < len(text) && text[i] == '+' {
		plus = true
		i++
	}
	for ; i < len(text); i++ {
		c := text[i]
		switch {
		case c >= '0' && c <= '9':
			if n == len(d) {
				return "", false
			}
			d[n] = c
			n++
			last = i
		case (c == ' ' || c == '.' || c == '-') && last >= 0:
		default:
			return "", false
		}
	}
	// After the last digit, spaces only.
	for j := last + 1; j < len(text); j++ {
		if text[j] != ' ' {
			return "", false
		}
	}
	digits := d[:n]
	switch {
	case plus:
		if !hasPrefix(digits, "212") {
			return "", false
		}
		digits = digits[3:]
	case hasPrefix(digits, "00212"):
		digits = digits[5:]
	case hasPrefix(digits, "212"):
		digits = digits[3:]
	}
	if len(digits) == 10 && digits[0] == '0' {
		digits = digits[1:]
	}
	if len(digits) != 9 || digits[0] < '5' || digits[0] > '8' {
		return "", false
	}
	return string(digits), true
}

func hasPrefix(b []byte, p string) bool {
	return len(b) >= len(p) && string(b[:len(p)]) == p
}

// fastMoroccan returns Parse's answer for a raw text whose national digits
// are nsn, and false when the fast path is off.
func fastMoroccan(raw, nsn string) (Number, error, bool) {
	k, table := maPrefixTable()
	if table == nil {
		return Number{}, nil, false
	}
	idx := 0
	for i := range k {
		idx = idx*10 + int(nsn[i]-'0')
	}
	e := table[idx].Load()
	if e == 0 {
		e = maEntry(nsn[:k])
		table[idx].Store(e)
	}
	n := Number{Raw: raw}
	if e&entryPossible != 0 {
		n.E164 = "+212" + nsn
	}
	if e&entryValid == 0 {
		return n, fmt.Errorf("parse phone %q: %w", raw, ErrInvalid), true
	}
	n.Valid = true
	n.Kind = Kind(e >> entryKindShift)
	return n, nil, true
}

const (
	entryKnown = 1 << iota
	entryPossible
	entryValid
	entryKindShift = 8
)

// maEntry asks the library about the national number made of prefix and
// zeros.
func maEntry(prefix string) uint32 {
	rep := prefix
	for len(rep) < 9 {
		rep += "0"
	}
	n, _ := parseLibrary("", "+212"+rep)
	e := uint32(entryKnown)
	if n.E164 != "" {
		e |= entryPossible
	}
	if n.Valid {
		e |= entryValid | uint32(n.Kind)<<entryKindShift
	}
	return e
}

var (
	maOnce  sync.Once
	maK     int
	maTable []atomic.Uint32
)

// maPrefixTable returns how many leading national digits decide a Moroccan
// number's fate, and the table of answers by those digits; a nil table when
// the metadata does not allow the fast path.
func maPrefixTable() (int, []atomic.Uint32) {
	maOnce.Do(func() {
		k, ok := maPrefix()
		if !ok {
			return
		}
		size := 1
		for range k {
			size *= 10
		}
		maK, maTable = k, make([]atomic.Uint32, size)
	})
	return maK, maTable
}

// maxPrefix bounds the table (10^maxPrefix entries).
const maxPrefix = 6

// maPrefix checks the metadata for +212 and returns the number of leading
// digits of a nine-digit national number that decide everything the library
// says of it: the patterns of every type of line in every region sharing the
// code, and the regions' leading digits, must each be a fixed-length prefix
// of at most maxPrefix characters followed by any digits; the regions must
// know only nine-digit national numbers; "0" must be the national prefix,
// with no transformation, and "00" the international one.
func maPrefix() (int, bool) {
	coll, err := phonenumbers.MetadataCollection()
	if err != nil {
		return 0, false
	}
	regions := phonenumbers.GetRegionCodesForCountryCode(212)
	if len(regions) == 0 || regions[0] != DefaultRegion {
		return 0, false
	}
	k, found := 1, 0
	for _, m := range coll.GetMetadata() {
		if m.GetCountryCode() != 212 {
			continue
		}
		found++
		if m.GetNationalPrefixForParsing() != "0" || m.GetNationalPrefixTransformRule() != "" ||
			m.GetInternationalPrefix() != "00" || m.GetGeneralDesc() == nil {
			return 0, false
		}
		g := m.GetGeneralDesc()
		if len(g.PossibleLength) != 1 || g.PossibleLength[0] != 9 || len(g.PossibleLengthLocalOnly) != 0 {
			return 0, false
		}
		if ld := m.GetLeadingDigits(); ld != "" {
			re, err := syntax.Parse(ld, syntax.Perl)
			if err != nil {
				return 0, false
			}
			n, ok := fixedLen(re.Simplify())
			if !ok || n > maxPrefix {
				return 0, false
			}
			k = max(k, n)
		}
		for _, d := range []*phonenumbers.PhoneNumberDesc{g, m.GetFixedLine(), m.GetMobile(), m.GetTollFree(),
			m.GetPremiumRate(), m.GetSharedCost(), m.GetVoip(), m.GetPersonalNumber(), m.GetPager(),
			m.GetUan(), m.GetVoicemail()} {
			if d == nil {
				continue
			}
			for _, l := range d.PossibleLength {
				if l != 9 {
					return 0, false
				}
			}
			if len(d.PossibleLengthLocalOnly) != 0 {
				return 0, false
			}
			n, ok := prefixLen(d.GetNationalNumberPattern())
			if !ok || n > maxPrefix {
				return 0, false
			}
			k = max(k, n)
		}
	}
	if found != len(regions) {
		return 0, false
	}
	return k, true
}

// prefixLen returns n when pattern matches exactly the strings made of one of
// a set of n-character prefixes followed by a fixed number of any digits.
func prefixLen(pattern string) (int, bool) {
	re, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return 0, false
	}
	var parts []*syntax.Regexp
	var flatten func(re *syntax.Regexp)
	flatten = func(re *syntax.Regexp) {
		switch {
		case re.Op == syntax.OpConcat:
			for _, s := range re.Sub {
				flatten(s)
			}
		case re.Op == syntax.OpRepeat && re.Min == re.Max && anyDigit(re.Sub[0]):
			for range re.Min {
				parts = append(parts, re.Sub[0])
			}
		default:
			parts = append(parts, re)
		}
	}
	flatten(re.Simplify())
	for len(parts) > 0 && anyDigit(parts[len(parts)-1]) {
		parts = parts[:len(parts)-1]
	}
	n := 0
	for _, p := range parts {
		l, ok := fixedLen(p)
		if !ok {
			return 0, false
		}
		n += l
	}
	return n, true
}

// anyDigit reports whether re is one character matching at least every
// ASCII digit.
func anyDigit(re *syntax.Regexp) bool {
	if re.Op != syntax.OpCharClass {
		return false
	}
	for c := '0'; c <= '9'; c++ {
		in := false
		for i := 0; i+1 < len(re.Rune); i += 2 {
			if re.Rune[i] <= c && c <= re.Rune[i+1] {
				in = true
				break
			}
		}
		if !in {
			return false
		}
	}
	return true
}

// fixedLen returns the length of every string re matches, when they all have
// the same length.
func fixedLen(re *syntax.Regexp) (int, bool) {
	switch re.Op {
	case syntax.OpLiteral:
		return len(re.Rune), true
	case syntax.OpCharClass, syntax.OpAnyChar, syntax.OpAnyCharNotNL:
		return 1, true
	case syntax.OpEmptyMatch:
		return 0, true
	case syntax.OpCapture:
		return fixedLen(re.Sub[0])
	case syntax.OpRepeat:
		if re.Min != re.Max {
			return 0, false
		}
		n, ok := fixedLen(re.Sub[0])
		return n * re.Min, ok
	case syntax.OpConcat:
		total := 0
		for _, s := range re.Sub {
			n, ok := fixedLen(s)
			if !ok {
				return 0, false
			}
			total += n
		}
		return total, true
	case syntax.OpAlternate:
		n := -1
		for _, s := range re.Sub {
			l, ok := fixedLen(s)
			if !ok || (n >= 0 && l != n) {
				return 0, false
			}
			n = l
		}
		return n, n >= 0
	}
	return 0, false
}
