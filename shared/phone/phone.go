// Package phone reads the phone numbers customers and sellers type into order
// forms and sheets and turns them into E.164 ("+212612345678"), the form
// leads and customers are keyed and deduplicated by. Numbers without a country
// code are read as Moroccan; Moroccan numbers have +212 and nine national
// digits (mobiles 06/07, fixed lines 05, non-geographic 08). Parsing and
// validation use github.com/nyaruka/phonenumbers (Google's libphonenumber
// metadata); the raw text is always kept, because an agent may still be able
// to call a number the metadata thinks is invalid.
package phone

import (
	"errors"
	"fmt"
	"strings"

	"github.com/nyaruka/phonenumbers"
)

// DefaultRegion is the region assumed for numbers written without a country
// code.
const DefaultRegion = "MA"

// Kind is the type of line a number belongs to.
type Kind uint8

// The kinds of line. KindUnknown is the kind of an invalid number.
const (
	KindUnknown Kind = iota
	KindMobile
	KindFixed
	KindOther // valid, but neither mobile nor fixed: toll-free, VoIP, shared cost, …
)

// String returns "unknown", "mobile", "fixed" or "other".
func (k Kind) String() string {
	switch k {
	case KindMobile:
		return "mobile"
	case KindFixed:
		return "fixed"
	case KindOther:
		return "other"
	}
	return "unknown"
}

// Number is a parsed phone number.
type Number struct {
	// Raw is the text as given, untouched.
	Raw string
	// E164 is the number in E.164 form, "+212612345678". It is set whenever
	// the digits have a possible length for their country, even if Valid is
	// false (a Moroccan number in a range the metadata does not know yet), and
	// empty when they cannot form a number at all ("06123456").
	E164 string
	// Valid reports whether the number is in a range allocated in its country
	// according to the phonenumbers metadata.
	Valid bool
	// Kind is the type of line; KindUnknown when the number is not valid.
	Kind Kind
}

// IsMoroccan reports whether the number has the Moroccan country code +212.
func (n Number) IsMoroccan() bool {
	return strings.HasPrefix(n.E164, "+212")
}

// National returns a Moroccan number in the ten-digit national form carriers
// and agents use, "0612345678"; any other number in its E.164 form; and ""
// when E164 is empty.
func (n Number) National() string {
	if n.IsMoroccan() {
		return "0" + n.E164[len("+212"):]
	}
	return n.E164
}

// The reasons [Parse] fails; test with errors.Is.
var (
	// ErrEmpty: the text holds no characters other than spaces.
	ErrEmpty = errors.New("empty phone number")
	// ErrNotNumber: the text cannot be read as a phone number at all (no
	// digits, too long, several numbers in one field).
	ErrNotNumber = errors.New("not a phone number")
	// ErrInvalid: the text reads as a number, but not one that exists: too
	// short or long for its country, or in a range not allocated.
	ErrInvalid = errors.New("invalid phone number")
)

// Parse reads raw as a phone number, Moroccan unless it carries another
// country code. It accepts the forms seen in seller data: "0612345678",
// "06 12 34 56 78", "+212612345678", "00212612345678", "212612345678",
// "612345678", "+212 7-1881-8174", "06.12.34.56.78", and the same with
// Arabic-Indic digits ("٠٦١٢٣٤٥٦٧٨") or invisible direction marks.
//
// The returned Number always has Raw set. Parse fails with an error wrapping
// [ErrEmpty] or [ErrNotNumber] when raw cannot be read; and with one wrapping
// [ErrInvalid], while still returning the Number it read (Valid false, E164
// set when the length is possible), when the number does not exist, as for
// "06123456".
func Parse(raw string) (Number, error) {
	text := normalize(raw)
	if nsn, ok := moroccanNSN(text); ok {
		if n, err, ok := fastMoroccan(raw, nsn); ok {
			return n, err
		}
	}
	return parseLibrary(raw, text)
}

// parseLibrary is Parse through the phonenumbers library, text being raw
// normalised.
func parseLibrary(raw, text string) (Number, error) {
	n := Number{Raw: raw}
	if strings.TrimSpace(text) == "" {
		return n, fmt.Errorf("parse phone %q: %w", raw, ErrEmpty)
	}
	pn, err := phonenumbers.Parse(text, DefaultRegion)
	if err != nil {
		return n, fmt.Errorf("parse phone %q: %w: %v", raw, ErrNotNumber, err)
	}
	if phonenumbers.IsPossibleNumber(pn) {
		n.E164 = phonenumbers.Format(pn, phonenumbers.E164)
	}
	if !phonenumbers.IsValidNumber(pn) {
		return n, fmt.Errorf("parse phone %q: %w", raw, ErrInvalid)
	}
	n.Valid = true
	n.Kind = kindOf(phonenumbers.GetNumberType(pn))
	return n, nil
}

func kindOf(t phonenumbers.PhoneNumberType) Kind {
	switch t {
	case phonenumbers.MOBILE:
		return KindMobile
	case phonenumbers.FIXED_LINE:
		return KindFixed
	case phonenumbers.UNKNOWN:
		return KindUnknown
	}
	return KindOther // includes FIXED_LINE_OR_MOBILE, which Morocco does not use
}

// normalize turns Arabic-Indic and Persian digits into ASCII ones and drops
// the invisible direction marks that text copied from Arabic interfaces
// carries.
func normalize(s string) string {
	ascii := true
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			ascii = false
			break
		}
	}
	if ascii { // nothing to map: the common case, without a call per rune
		return s
	}
	return strings.Map(func(r rune) rune {
		switch {
		case r >= '٠' && r <= '٩':
			return '0' + r - '٠'
		case r >= '۰' && r <= '۹':
			return '0' + r - '۰'
		case r == '\u061c', r == '\u200b', r == '\u200e', r == '\u200f', r == '\ufeff',
			r >= '\u202a' && r <= '\u202e', r >= '\u2066' && r <= '\u2069':
			return -1
		}
		return r
	}, s)
}
