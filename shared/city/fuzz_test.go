package city_test

import (
	"errors"
	"testing"

	"github.com/leadify/leadify/shared/city"
	"github.com/stretchr/testify/require"
)

// FuzzResolve checks that Resolve never panics, fails only with an
// *UnknownCityError carrying the input, and that a resolved city resolves
// again from its own names.
func FuzzResolve(f *testing.F) {
	for _, s := range []string{
		"Casablanca", "casa", "الدار البيضاء", "Tangier", "tanja", "eljadida", "Fès",
		"مَرَّاكُش", "marrakech ", "Casablnca", "", "ال", "Ksar-el-Kébir", "Fe\u0301s",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		c, err := city.Resolve(in)
		if err != nil {
			var ue *city.UnknownCityError
			require.True(t, errors.As(err, &ue), "error %T", err)
			require.Equal(t, in, ue.Input)
			require.ErrorIs(t, err, city.ErrUnknownCity)
			require.Equal(t, city.City{}, c)
			if ue.Suggestion.ID != "" {
				_, ok := city.ByID(ue.Suggestion.ID)
				require.True(t, ok)
			}
			return
		}
		for _, s := range []string{c.ID, c.Name, c.NameAR} {
			again, err := city.Resolve(s)
			require.NoError(t, err)
			require.Equal(t, c, again)
		}
	})
}
