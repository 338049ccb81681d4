package city

import (
	"strings"
	"unicode"
)

// foldRunes maps letters to the form used in matching keys: Latin letters
// lose their accents, and Arabic letters that people write interchangeably
// become one (hamza forms of alef, alef maqsura and Persian yeh, ta marbuta
// and heh, the Moroccan and Persian gaf and keheh).
var foldRunes = buildFoldRunes()

func buildFoldRunes() map[rune]string {
	m := map[rune]string{}
	for to, from := range map[string]string{
		"a": "àáâãäåāăą", "c": "çćč", "d": "ďđ", "e": "èéêëēėęě", "g": "ğ",
		"i": "ìíîïīįı", "l": "ł", "n": "ñńň", "o": "òóôõöøōő", "r": "ř",
		"s": "śšş", "t": "ťţ", "u": "ùúûüūůű", "y": "ýÿ", "z": "źżž",
		"ae": "æ", "oe": "œ", "ss": "ß",
		"ا": "أإآٱٲٳ", "ي": "ىیېئ", "ه": "ةۀہە", "و": "ؤ", "ك": "کگݣڭګ",
		"ف": "ڤ", "ب": "پ",
		"": "ءـ", // lone hamza and tatweel are dropped
	} {
		for _, r := range from {
			m[r] = to
		}
	}
	return m
}

// key returns the matching key of s: lower case, folded (see foldRunes),
// without combining marks (Latin accents in decomposed form, Arabic
// tashkeel), digits (a postal code typed after the name), invisible
// characters, spaces or punctuation, with runs of the same letter collapsed
// to one and without a leading Arabic article "ال".
func key(s string) string {
	var b strings.Builder
	var last rune
	put := func(r rune) {
		if r != last {
			b.WriteRune(r)
			last = r
		}
	}
	for _, r := range strings.ToLower(s) {
		if folded, ok := foldRunes[r]; ok {
			for _, f := range folded {
				put(f)
			}
			continue
		}
		if unicode.IsLetter(r) {
			put(r)
		}
	}
	k := b.String()
	if rest, ok := strings.CutPrefix(k, "ال"); ok && len([]rune(rest)) >= 2 {
		return rest
	}
	return k
}

// maxSuggestLen bounds the keys closest compares, so that long junk input
// costs no more than a city name.
const maxSuggestLen = 40

// closest returns the catalogue index of the city whose key is nearest to k
// by edit distance, if one is near enough: one edit for keys of up to five
// letters, two up to ten, three beyond. Ties go to the smallest key.
func closest(k string) (int, bool) {
	kr := []rune(k)
	if len(kr) < 3 || len(kr) > maxSuggestLen {
		return 0, false
	}
	limit := 3
	switch {
	case len(kr) <= 5:
		limit = 1
	case len(kr) <= 10:
		limit = 2
	}
	best, bestDist := "", limit+1
	for _, cand := range idx.keys {
		if d := distance(kr, []rune(cand)); d < bestDist {
			best, bestDist = cand, d
		}
	}
	if best == "" {
		return 0, false
	}
	return idx.byKey[best], true
}

// distance returns the Levenshtein distance between a and b.
func distance(a, b []rune) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
