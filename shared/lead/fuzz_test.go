package lead_test

import (
	"testing"

	"github.com/leadify/leadify/shared/lead"
	"github.com/stretchr/testify/require"
)

func FuzzParseStatus(f *testing.F) {
	for _, s := range lead.Statuses() {
		f.Add(s.String())
	}
	f.Add("")
	f.Add("Confirmed")
	f.Add("no answer")
	f.Fuzz(func(t *testing.T, in string) {
		s, err := lead.ParseStatus(in)
		if err != nil {
			require.ErrorIs(t, err, lead.ErrUnknownStatus)
			return
		}
		require.True(t, s.Valid())
		require.Equal(t, in, s.String())
	})
}

func FuzzParseOutcome(f *testing.F) {
	for _, o := range lead.Outcomes() {
		f.Add(o.String())
	}
	f.Add("confirmed")
	f.Add("")
	f.Fuzz(func(t *testing.T, in string) {
		o, err := lead.ParseOutcome(in)
		if err != nil {
			require.ErrorIs(t, err, lead.ErrUnknownOutcome)
			return
		}
		require.True(t, o.Valid())
		require.Equal(t, in, o.String())
		require.True(t, o.Status().Valid())
	})
}
