package money

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"unicode"
)

// The reasons [Parse] fails. A *ParseError wraps exactly one of them (or
// [ErrOverflow]); test with errors.Is.
var (
	ErrEmpty           = errors.New("no amount given")
	ErrNoNumber        = errors.New("no number in text")
	ErrNegative        = errors.New("negative amount")
	ErrMultipleNumbers = errors.New("more than one number")
	ErrUnexpectedText  = errors.New("unexpected text")
	ErrSyntax          = errors.New("malformed number")
	ErrPrecision       = errors.New("more than two decimals")
)

// ParseError reports text that [Parse] could not read as an amount.
type ParseError struct {
	Input string // the text as given
	Err   error  // why: wraps one of the Err… variables of this package
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("parse amount %q: %v", e.Input, e.Err)
}

func (e *ParseError) Unwrap() error { return e.Err }

// currencyWords are the words accepted around the number, after lower-casing
// and dropping one trailing period.
var currencyWords = map[string]bool{
	"mad": true, "dh": true, "dhs": true, "dirham": true, "dirhams": true,
	"درهم": true, "دراهم": true, "درهما": true, "د.م": true,
}

// Parse reads a price as sellers type it and returns it in centimes. It
// accepts:
//
//   - a decimal comma or point, with one or two decimals: "249,00", "149.9";
//     more decimals are accepted only when the extra ones are zeros;
//   - thousands grouped by spaces, points or commas: "1 299.50", "1,299.50",
//     "1.299,50"; the last separator is the decimal one when the two kinds are
//     mixed;
//   - a lone point or comma followed by exactly three digits is a thousands
//     separator when one to three digits not starting with 0 come before it,
//     because dirhams have two decimals: "12.345" is 12 345 MAD and "1,500" is
//     1 500 MAD; otherwise it is a decimal separator ("0.500" is 0,50 MAD);
//   - Arabic-Indic digits and separators: "١٢٠", "١٬٢٩٩٫٥٠";
//   - the currency before or after, in any case, with or without a space: "MAD",
//     "DH", "DHS", "dirham(s)", "درهم", "دراهم", "د.م.": "120 DH", " 120dh ",
//     "MAD 99", "120 درهم".
//
// It fails with a *ParseError wrapping [ErrEmpty] for blank text,
// [ErrNoNumber] for text without digits ("gratuit"), [ErrNegative] for a
// minus sign ("-5"), [ErrMultipleNumbers] for more than one number ("2 x 120",
// "120/150"), [ErrUnexpectedText] for words other than a currency ("120 DH
// livraison"), [ErrSyntax] for misplaced separators ("1.29.5", "1 29"),
// [ErrPrecision] for fractions of a centime ("12.3456") and [ErrOverflow] for
// amounts that do not fit.
func Parse(s string) (Amount, error) {
	a, err := parse(s)
	if err != nil {
		return 0, &ParseError{Input: s, Err: err}
	}
	return a, nil
}

func parse(s string) (Amount, error) {
	norm := normalize(s)
	if strings.TrimSpace(norm) == "" {
		return 0, ErrEmpty
	}
	runs, texts := splitRuns(norm)
	switch {
	case len(runs) == 0:
		return 0, ErrNoNumber
	case len(runs) > 1:
		return 0, ErrMultipleNumbers
	}
	before, after := strings.TrimSpace(texts[0]), texts[1]
	if strings.HasSuffix(before, "-") {
		return 0, ErrNegative
	}
	for _, word := range strings.Fields(before + " " + after) {
		if !currencyWords[strings.TrimSuffix(word, ".")] {
			return 0, fmt.Errorf("%w %q", ErrUnexpectedText, word)
		}
	}
	return parseNumber(runs[0])
}

// normalize maps digits and separators to ASCII, every kind of space to ' ',
// drops invisible direction marks and lower-cases the rest.
func normalize(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= '٠' && r <= '٩': // Arabic-Indic
			return '0' + r - '٠'
		case r >= '۰' && r <= '۹': // Extended Arabic-Indic (Persian)
			return '0' + r - '۰'
		case r == '٫': // Arabic decimal separator
			return '.'
		case r == '٬': // Arabic thousands separator
			return ' '
		case r == '−': // minus sign
			return '-'
		case isInvisible(r):
			return -1
		case unicode.IsSpace(r):
			return ' '
		}
		return unicode.ToLower(r)
	}, s)
}

// isInvisible reports whether r is a zero-width or bidirectional control that
// text copied from Arabic interfaces often carries.
func isInvisible(r rune) bool {
	switch {
	case r == '\u061c', r == '\u200b', r == '\u200e', r == '\u200f', r == '\ufeff':
		return true
	case r >= '\u202a' && r <= '\u202e', r >= '\u2066' && r <= '\u2069':
		return true
	}
	return false
}

// splitRuns cuts s into numeric runs (digits joined by single separators
// '.', ',' or ' ' that have a digit on both sides) and the texts around them:
// len(texts) == len(runs)+1.
func splitRuns(s string) (runs, texts []string) {
	start := 0 // start of the current text
	for i := 0; i < len(s); {
		if !isDigit(s[i]) {
			i++
			continue
		}
		j := i + 1
		for j < len(s) {
			if isDigit(s[j]) {
				j++
			} else if isSeparator(s[j]) && j+1 < len(s) && isDigit(s[j+1]) {
				j += 2
			} else {
				break
			}
		}
		texts = append(texts, s[start:i])
		runs = append(runs, s[i:j])
		start, i = j, j
	}
	return runs, append(texts, s[start:])
}

func isDigit(b byte) bool     { return b >= '0' && b <= '9' }
func isSeparator(b byte) bool { return b == '.' || b == ',' || b == ' ' }

// parseNumber reads a numeric run: digits with separators between them.
func parseNumber(run string) (Amount, error) {
	groups := strings.FieldsFunc(run, func(r rune) bool { return r < 128 && isSeparator(byte(r)) })
	var seps []byte
	for i := range len(run) {
		if isSeparator(run[i]) {
			seps = append(seps, run[i])
		}
	}
	if len(seps) == 0 {
		return amount(run, "")
	}
	last := seps[len(seps)-1]
	allSame := strings.Count(string(seps), string(last)) == len(seps)
	fraction := groups[len(groups)-1]
	switch {
	case last == ' ':
		if !allSame {
			return 0, fmt.Errorf("%w: space after a decimal separator", ErrSyntax)
		}
		return grouped(groups, "")
	case allSame && len(seps) == 1 && len(fraction) == 3 && isLeadingGroup(groups[0]):
		// "12.345": a thousands separator, since dirhams have two decimals.
		return grouped(groups, "")
	case allSame && len(seps) == 1:
		return amount(groups[0], fraction)
	case allSame:
		return grouped(groups, "")
	}
	// Mixed: the last separator is the decimal one, the others group thousands.
	first := seps[0]
	for _, sep := range seps[:len(seps)-1] {
		if sep != first {
			return 0, fmt.Errorf("%w: mixed thousands separators", ErrSyntax)
		}
	}
	if first == last {
		return 0, fmt.Errorf("%w: decimal separator used twice", ErrSyntax)
	}
	return grouped(groups[:len(groups)-1], fraction)
}

// grouped checks that groups are thousands groups (a first group of 1 to 3
// digits not starting with 0, then groups of exactly 3) and returns the amount.
func grouped(groups []string, fraction string) (Amount, error) {
	if !isLeadingGroup(groups[0]) {
		return 0, fmt.Errorf("%w: bad thousands group %q", ErrSyntax, groups[0])
	}
	for _, g := range groups[1:] {
		if len(g) != 3 {
			return 0, fmt.Errorf("%w: bad thousands group %q", ErrSyntax, g)
		}
	}
	return amount(strings.Join(groups, ""), fraction)
}

func isLeadingGroup(g string) bool {
	return len(g) <= 3 && g[0] != '0'
}

// amount returns the amount with the given integer and fraction digits. A
// fraction longer than two digits must end in zeros.
func amount(units, fraction string) (Amount, error) {
	if len(fraction) > 2 {
		if strings.Trim(fraction[2:], "0") != "" {
			return 0, ErrPrecision
		}
		fraction = fraction[:2]
	}
	fraction += "00"[len(fraction):]

	var v int64
	for i := range len(units) {
		if v > (math.MaxInt64-9)/10 {
			return 0, ErrOverflow
		}
		v = v*10 + int64(units[i]-'0')
	}
	cents := int64(fraction[0]-'0')*10 + int64(fraction[1]-'0')
	if v > (math.MaxInt64-cents)/100 {
		return 0, ErrOverflow
	}
	return Amount(v*100 + cents), nil
}
