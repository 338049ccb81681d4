package billing

import (
	"slices"
	"unicode"
)

// The PDF library draws glyphs one rune at a time, left to right, without
// shaping. Arabic text is therefore shaped here — each letter replaced by its
// isolated, final, initial or medial presentation form (Unicode Arabic
// Presentation Forms-B), lam-alef pairs by their ligature — and put in visual
// order: right-to-left runs reversed, numbers and Latin words kept
// left-to-right.

// arabicForm is a letter's first presentation form (isolated) and how many
// forms it has: 1 (non-joining), 2 (joins on its right only: isolated,
// final) or 4 (joins both sides: isolated, final, initial, medial).
type arabicForm struct {
	first rune
	n     int
}

var arabicForms = map[rune]arabicForm{
	'ء': {0xFE80, 1}, 'آ': {0xFE81, 2}, 'أ': {0xFE83, 2}, 'ؤ': {0xFE85, 2}, 'إ': {0xFE87, 2}, 'ئ': {0xFE89, 4},
	'ا': {0xFE8D, 2}, 'ب': {0xFE8F, 4}, 'ة': {0xFE93, 2}, 'ت': {0xFE95, 4}, 'ث': {0xFE99, 4}, 'ج': {0xFE9D, 4},
	'ح': {0xFEA1, 4}, 'خ': {0xFEA5, 4}, 'د': {0xFEA9, 2}, 'ذ': {0xFEAB, 2}, 'ر': {0xFEAD, 2}, 'ز': {0xFEAF, 2},
	'س': {0xFEB1, 4}, 'ش': {0xFEB5, 4}, 'ص': {0xFEB9, 4}, 'ض': {0xFEBD, 4}, 'ط': {0xFEC1, 4}, 'ظ': {0xFEC5, 4},
	'ع': {0xFEC9, 4}, 'غ': {0xFECD, 4}, 'ف': {0xFED1, 4}, 'ق': {0xFED5, 4}, 'ك': {0xFED9, 4}, 'ل': {0xFEDD, 4},
	'م': {0xFEE1, 4}, 'ن': {0xFEE5, 4}, 'ه': {0xFEE9, 4}, 'و': {0xFEED, 2}, 'ى': {0xFEEF, 2}, 'ي': {0xFEF1, 4},
	'ـ': {'ـ', 1}, // tatweel joins both sides and has one form
}

// lamAlef maps the alef that follows a lam to the ligature's isolated form
// (the final form is the next code point).
var lamAlef = map[rune]rune{'آ': 0xFEF5, 'أ': 0xFEF7, 'إ': 0xFEF9, 'ا': 0xFEFB}

// Form offsets from a letter's isolated form.
const (
	formIsolated = iota
	formFinal
	formInitial
	formMedial
)

func isTransparent(r rune) bool { return unicode.Is(unicode.Mn, r) }

// joinsBefore reports whether r connects to the letter after it (in logical
// order): dual-joining letters and tatweel.
func joinsBefore(r rune) bool {
	f, ok := arabicForms[r]
	return ok && (f.n == 4 || r == 'ـ')
}

// joinsAfter reports whether r connects to the letter before it.
func joinsAfter(r rune) bool {
	f, ok := arabicForms[r]
	return ok && (f.n >= 2 || r == 'ـ')
}

// shapeArabic returns s, in logical order, with Arabic letters replaced by
// their contextual presentation forms.
func shapeArabic(s string) []rune {
	in := []rune(s)
	out := make([]rune, 0, len(in))
	// neighbour returns the nearest non-transparent rune from i in step.
	neighbour := func(i, step int) rune {
		for j := i + step; j >= 0 && j < len(in); j += step {
			if !isTransparent(in[j]) {
				return in[j]
			}
		}
		return 0
	}
	for i := 0; i < len(in); i++ {
		r := in[i]
		f, ok := arabicForms[r]
		if !ok || f.n == 1 {
			out = append(out, r)
			continue
		}
		prev := neighbour(i, -1)
		joinPrev := joinsBefore(prev)
		if r == 'ل' && i+1 < len(in) {
			if lig, ok := lamAlef[in[i+1]]; ok {
				if joinPrev {
					lig++
				}
				out = append(out, lig)
				i++
				continue
			}
		}
		joinNext := f.n == 4 && joinsAfter(neighbour(i, +1))
		form := formIsolated
		switch {
		case joinPrev && joinNext:
			form = formMedial
		case joinPrev:
			form = formFinal
		case joinNext:
			form = formInitial
		}
		out = append(out, f.first+rune(form))
	}
	return out
}

// isRTL reports whether r is written right to left (Arabic letters and their
// presentation forms).
func isRTL(r rune) bool {
	return unicode.Is(unicode.Arabic, r) && !unicode.IsDigit(r) && r != '،' && r != '؛' && r != '؟' || r == 0x200F
}

// isStrongLTR reports whether r starts a left-to-right run: Latin letters
// and digits (European and Arabic-Indic digits both read left to right).
func isStrongLTR(r rune) bool {
	return unicode.IsDigit(r) || (unicode.IsLetter(r) && !unicode.Is(unicode.Arabic, r))
}

// Visual shapes s and returns it in the order the glyphs are drawn left to
// right, for a right-to-left paragraph: the order of runs is reversed, the
// letters of right-to-left runs are reversed, and left-to-right runs
// (numbers, Latin words, with the punctuation between their characters)
// keep their order. Text without Arabic is returned unchanged.
func Visual(s string) string {
	shaped := shapeArabic(s)
	if !slices.ContainsFunc(shaped, isRTL) {
		return s
	}
	type run struct {
		ltr   bool
		runes []rune
	}
	var runs []run
	for i := 0; i < len(shaped); {
		r := shaped[i]
		if isStrongLTR(r) {
			// An LTR run extends over neutrals up to its last strong LTR rune.
			j, last := i, i
			for ; j < len(shaped) && !isRTL(shaped[j]); j++ {
				if isStrongLTR(shaped[j]) {
					last = j
				}
			}
			runs = append(runs, run{true, shaped[i : last+1]})
			i = last + 1
			continue
		}
		j := i
		for j < len(shaped) && !isStrongLTR(shaped[j]) {
			j++
		}
		runs = append(runs, run{false, shaped[i:j]})
		i = j
	}
	out := make([]rune, 0, len(shaped))
	for k := len(runs) - 1; k >= 0; k-- {
		if runs[k].ltr {
			out = append(out, runs[k].runes...)
			continue
		}
		for m := len(runs[k].runes) - 1; m >= 0; m-- {
			out = append(out, mirror(runs[k].runes[m]))
		}
	}
	return string(out)
}

// mirror swaps paired punctuation drawn in a right-to-left run.
func mirror(r rune) rune {
	switch r {
	case '(':
		return ')'
	case ')':
		return '('
	case '[':
		return ']'
	case ']':
		return '['
	case '«':
		return '»'
	case '»':
		return '«'
	}
	return r
}
