// Package city is Leadify's catalogue of Moroccan cities and the resolver that
// turns what sellers and customers type in a city field ("casa", "Tangier",
// "eljadida", "الدار البيضاء", "marrakech ") into one catalogue entry with a
// stable id. Carriers want city names (Coliix) or their own numeric ids
// (Ameex); both are mapped from these ids, never from raw text. Matching
// ignores case, Latin accents, Arabic tashkeel and letter variants, spaces,
// hyphens, apostrophes and doubled letters; what still does not match is
// reported with the closest known spelling as a suggestion, never silently
// guessed.
package city

import (
	"errors"
	"fmt"
	"slices"
)

// City is a city of the catalogue.
type City struct {
	ID     string // stable slug, e.g. "el-jadida"; the key stored in rows
	Name   string // French name, e.g. "El Jadida"
	NameAR string // Arabic name, e.g. "الجديدة"
}

// String returns the French name.
func (c City) String() string { return c.Name }

// Aliases returns the other spellings the catalogue lists for c, not
// including its id and names. It returns nil for a city not in the catalogue.
func (c City) Aliases() []string {
	i, ok := idx.byID[c.ID]
	if !ok {
		return nil
	}
	return slices.Clone(catalogue[i].aliases)
}

type entry struct {
	city    City
	aliases []string
}

func c(id, name, nameAR string, aliases ...string) entry {
	return entry{City{ID: id, Name: name, NameAR: nameAR}, aliases}
}

// index holds the lookup tables, built once from catalogue and read-only
// after.
type index struct {
	byID  map[string]int // id → position in catalogue
	byKey map[string]int // matching key → position in catalogue
	keys  []string       // the keys of byKey, sorted, for suggestions
}

var idx = newIndex(catalogue)

// newIndex builds the lookup tables. It panics if two cities share an id or a
// spelling's key, a mistake in the catalogue that the tests catch.
func newIndex(entries []entry) index {
	x := index{byID: map[string]int{}, byKey: map[string]int{}}
	for i, e := range entries {
		if _, dup := x.byID[e.city.ID]; dup {
			panic("city: duplicate id " + e.city.ID)
		}
		x.byID[e.city.ID] = i
		for _, s := range append([]string{e.city.ID, e.city.Name, e.city.NameAR}, e.aliases...) {
			k := key(s)
			if j, dup := x.byKey[k]; dup && j != i {
				panic(fmt.Sprintf("city: %q of %s has the same key as a spelling of %s", s, e.city.ID, entries[j].city.ID))
			}
			x.byKey[k] = i
		}
	}
	for k := range x.byKey {
		x.keys = append(x.keys, k)
	}
	slices.Sort(x.keys)
	return x
}

// All returns every city of the catalogue, largest first.
func All() []City {
	all := make([]City, len(catalogue))
	for i, e := range catalogue {
		all[i] = e.city
	}
	return all
}

// ByID returns the city with the given id, and false if there is none.
func ByID(id string) (City, bool) {
	i, ok := idx.byID[id]
	if !ok {
		return City{}, false
	}
	return catalogue[i].city, true
}

// ErrUnknownCity is wrapped by every error [Resolve] returns.
var ErrUnknownCity = errors.New("unknown city")

// UnknownCityError reports text that names no city of the catalogue.
type UnknownCityError struct {
	Input string // the text as given
	// Suggestion is the city with the closest spelling when one is close
	// enough to be worth asking about; its ID is empty otherwise.
	Suggestion City
}

func (e *UnknownCityError) Error() string {
	if e.Suggestion.ID != "" {
		return fmt.Sprintf("unknown city %q (did you mean %s?)", e.Input, e.Suggestion.Name)
	}
	return fmt.Sprintf("unknown city %q", e.Input)
}

// Unwrap returns [ErrUnknownCity].
func (e *UnknownCityError) Unwrap() error { return ErrUnknownCity }

// Resolve returns the city input names: its id, French or Arabic name or a
// listed variant, in any case, with or without accents, tashkeel, hyphens or
// spaces. It fails with an *UnknownCityError (which wraps [ErrUnknownCity])
// for anything else, including blank input; the error suggests the closest
// spelling when there is one within a few typos, but Resolve never picks it
// by itself ("Tata" and "Taza" are one letter apart).
func Resolve(input string) (City, error) {
	k := key(input)
	if i, ok := idx.byKey[k]; ok {
		return catalogue[i].city, nil
	}
	err := &UnknownCityError{Input: input}
	if i, ok := closest(k); ok {
		err.Suggestion = catalogue[i].city
	}
	return City{}, err
}
