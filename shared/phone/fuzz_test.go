package phone_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/leadify/leadify/shared/phone"
	"github.com/stretchr/testify/require"
)

// FuzzParse checks that Parse never panics, always keeps the raw text, fails
// only with its documented reasons, and that a valid number's E.164 form
// parses back to itself.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"0612345678", "06 12 34 56 78", "+212612345678", "00212612345678",
		"212612345678", "612345678", "٠٦١٢٣٤٥٦٧٨", "+212 7-1881-8174", "06123456",
		"", "+33612345678", "0612345678 ext 12", "++212", "0612345678 / 0698765432",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		n, err := phone.Parse(raw)
		require.Equal(t, raw, n.Raw)
		if n.E164 != "" {
			require.True(t, strings.HasPrefix(n.E164, "+"), "E164 %q", n.E164)
		}
		if err != nil {
			require.False(t, n.Valid)
			require.Equal(t, phone.KindUnknown, n.Kind)
			require.True(t, errors.Is(err, phone.ErrEmpty) || errors.Is(err, phone.ErrNotNumber) ||
				errors.Is(err, phone.ErrInvalid), "undocumented failure: %v", err)
			return
		}
		require.True(t, n.Valid)
		require.NotEmpty(t, n.E164)
		require.NotEqual(t, phone.KindUnknown, n.Kind)
		back, err := phone.Parse(n.E164)
		require.NoError(t, err)
		require.Equal(t, n.E164, back.E164)
		require.Equal(t, n.Kind, back.Kind)
	})
}
