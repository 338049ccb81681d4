package carrier

import "github.com/leadify/leadify/shared/city"

// CityMap maps Leadify's canonical city ids to a carrier's cities.
type CityMap map[string]City

// MapCities resolves each carrier city's name with city.Resolve (so variant
// spellings such as "Casa" or "Fes" find their canonical city) and returns
// the map from canonical id to carrier city. Names that resolve to no
// canonical city are returned in unmatched. When two carrier cities resolve
// to the same canonical city, the first listed wins.
func MapCities(cities []City) (m CityMap, unmatched []City) {
	m = make(CityMap, len(cities))
	for _, c := range cities {
		canon, err := city.Resolve(c.Name)
		if err != nil {
			unmatched = append(unmatched, c)
			continue
		}
		if _, dup := m[canon.ID]; !dup {
			m[canon.ID] = c
		}
	}
	return m, unmatched
}

// For returns the carrier city for c, or an *UnmappedCityError.
func (m CityMap) For(carrier string, c city.City) (City, error) {
	cc, ok := m[c.ID]
	if !ok {
		return City{}, &UnmappedCityError{Carrier: carrier, CityID: c.ID}
	}
	return cc, nil
}
