package parcel_test

import (
	"testing"

	"github.com/leadify/leadify/shared/parcel"
	"github.com/stretchr/testify/require"
)

func FuzzParseStatus(f *testing.F) {
	for _, s := range parcel.Statuses() {
		f.Add(s.String())
	}
	f.Add("")
	f.Add("Livré ")
	f.Add("out-for-delivery")
	f.Fuzz(func(t *testing.T, in string) {
		s, err := parcel.ParseStatus(in)
		if err != nil {
			require.ErrorIs(t, err, parcel.ErrUnknownStatus)
			return
		}
		require.True(t, s.Valid())
		require.Equal(t, in, s.String())
	})
}

// FuzzApply checks that any sequence of reports only ever moves a parcel
// along legal transitions, never out of a terminal status, and emits each
// event at most once.
func FuzzApply(f *testing.F) {
	f.Add([]byte{1, 2, 4, 3, 5, 6, 4, 5, 7, 4})
	f.Add([]byte{2, 8, 7, 9, 9, 4})
	f.Add([]byte{6, 6, 5, 6, 4, 11, 7})
	f.Fuzz(func(t *testing.T, reports []byte) {
		current := parcel.StatusCreated
		seen := map[parcel.Event]bool{}
		for _, b := range reports {
			reported := parcel.Status(b % 13) // includes invalid 0 and 12
			ev, hasEvent := parcel.TransitionEvent(current, reported)
			next, changed := parcel.Apply(current, reported)
			require.Equal(t, parcel.CanTransition(current, reported), changed)
			if !changed {
				require.Equal(t, current, next)
				require.False(t, hasEvent)
				continue
			}
			require.True(t, next.Valid())
			require.NotEqual(t, current, next)
			require.False(t, current == parcel.StatusReturned || current == parcel.StatusCancelled || current == parcel.StatusLost)
			if hasEvent {
				require.False(t, seen[ev], "event %v emitted twice", ev)
				seen[ev] = true
			}
			current = next
		}
	})
}
