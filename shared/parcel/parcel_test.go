package parcel_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/leadify/leadify/shared/parcel"
	"github.com/stretchr/testify/require"
)

func TestStatusStringParse(t *testing.T) {
	t.Parallel()
	names := []string{
		"created", "sent", "picked_up", "in_transit", "out_for_delivery", "postponed",
		"delivered", "refused", "returned", "cancelled", "lost",
	}
	all := parcel.Statuses()
	require.Len(t, all, len(names))
	for i, name := range names {
		t.Run(name, func(t *testing.T) {
			s := all[i]
			require.True(t, s.Valid())
			require.Equal(t, name, s.String())
			got, err := parcel.ParseStatus(name)
			require.NoError(t, err)
			require.Equal(t, s, got)
		})
	}
}

func TestParseStatusRejects(t *testing.T) {
	t.Parallel()
	for _, in := range []string{"", "Delivered", "livré", "Livré", "canceled", "in transit", " sent"} {
		t.Run(in, func(t *testing.T) {
			_, err := parcel.ParseStatus(in)
			require.ErrorIs(t, err, parcel.ErrUnknownStatus)
		})
	}
}

func TestStatusJSON(t *testing.T) {
	t.Parallel()
	b, err := json.Marshal(map[string]parcel.Status{"s": parcel.StatusOutForDelivery})
	require.NoError(t, err)
	require.JSONEq(t, `{"s":"out_for_delivery"}`, string(b))
	var got map[string]parcel.Status
	require.NoError(t, json.Unmarshal(b, &got))
	require.Equal(t, parcel.StatusOutForDelivery, got["s"])
	require.ErrorIs(t, json.Unmarshal([]byte(`{"s":"Livré"}`), &got), parcel.ErrUnknownStatus)
	_, err = json.Marshal(map[string]parcel.Status{"s": 0})
	require.Error(t, err)
}

func TestFinalAndActive(t *testing.T) {
	t.Parallel()
	tests := []struct {
		status        parcel.Status
		final, active bool
	}{
		{parcel.StatusCreated, false, true},
		{parcel.StatusSent, false, true},
		{parcel.StatusPickedUp, false, true},
		{parcel.StatusInTransit, false, true},
		{parcel.StatusOutForDelivery, false, true},
		{parcel.StatusPostponed, false, true},
		{parcel.StatusDelivered, true, false},
		{parcel.StatusRefused, false, false},
		{parcel.StatusReturned, true, false},
		{parcel.StatusCancelled, true, false},
		{parcel.StatusLost, true, false},
		{0, false, false},
		{12, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.status.String(), func(t *testing.T) {
			require.Equal(t, tt.final, tt.status.IsFinal())
			require.Equal(t, tt.active, tt.status.IsActive())
		})
	}
}

// matrix is the transition table written out by hand: row "from", column
// "to", in lifecycle order, 'x' where the move is legal.
var matrix = []string{
	//         cr se pu it od pp de rf rt ca lo
	/* cr */ ". x x x x x x x x x x",
	/* se */ ". . x x x x x x x x x",
	/* pu */ ". . . x x x x x x x x",
	/* it */ ". . . . x x x x x x x",
	/* od */ ". . . . . x x x x x x",
	/* pp */ ". . . x x . x x x x x",
	/* de */ ". . . . . . . . x . .",
	/* rf */ ". . . . . . . . x . .",
	/* rt */ ". . . . . . . . . . .",
	/* ca */ ". . . . . . . . . . .",
	/* lo */ ". . . . . . . . . . .",
}

func TestTransitionsExhaustive(t *testing.T) {
	t.Parallel()
	all := parcel.Statuses()
	require.Len(t, matrix, len(all))
	withInvalid := append(parcel.Statuses(), 0, 12)
	for _, from := range withInvalid {
		var wantTargets []parcel.Status
		for _, to := range withInvalid {
			want := false
			if from.Valid() && to.Valid() {
				want = strings.Fields(matrix[from-1])[to-1] == "x"
			}
			if want {
				wantTargets = append(wantTargets, to)
			}
			t.Run(from.String()+"->"+to.String(), func(t *testing.T) {
				require.Equal(t, want, parcel.CanTransition(from, to))

				next, changed := parcel.Apply(from, to)
				require.Equal(t, want, changed)
				if want {
					require.Equal(t, to, next)
					require.NoError(t, parcel.Transition(from, to))
					return
				}
				require.Equal(t, from, next, "an illegal report leaves the status unchanged")
				var te *parcel.TransitionError
				require.ErrorAs(t, parcel.Transition(from, to), &te)
				require.Equal(t, from, te.From)
				require.Equal(t, to, te.To)
			})
		}
		require.Equal(t, wantTargets, parcel.Targets(from), "targets of %v", from)
	}
}

func TestFinalNeverRegresses(t *testing.T) {
	t.Parallel()
	for _, from := range parcel.Statuses() {
		if !from.IsFinal() {
			continue
		}
		for _, to := range parcel.Statuses() {
			if to.IsActive() {
				require.False(t, parcel.CanTransition(from, to), "%v -> %v", from, to)
			}
		}
	}
}

func TestApplyLateWebhooks(t *testing.T) {
	t.Parallel()
	// A realistic carrier history, delivered out of order: each report is
	// applied to the status the previous one left.
	reports := []struct {
		reported parcel.Status
		want     parcel.Status
		changed  bool
	}{
		{parcel.StatusSent, parcel.StatusSent, true},
		{parcel.StatusInTransit, parcel.StatusInTransit, true}, // picked_up skipped
		{parcel.StatusPickedUp, parcel.StatusInTransit, false}, // late
		{parcel.StatusOutForDelivery, parcel.StatusOutForDelivery, true},
		{parcel.StatusPostponed, parcel.StatusPostponed, true},
		{parcel.StatusPostponed, parcel.StatusPostponed, false}, // repeated
		{parcel.StatusInTransit, parcel.StatusInTransit, true},  // back at the hub
		{parcel.StatusOutForDelivery, parcel.StatusOutForDelivery, true},
		{parcel.StatusDelivered, parcel.StatusDelivered, true},
		{parcel.StatusInTransit, parcel.StatusDelivered, false}, // late webhook
		{parcel.StatusOutForDelivery, parcel.StatusDelivered, false},
	}
	current := parcel.StatusCreated
	for i, r := range reports {
		next, changed := parcel.Apply(current, r.reported)
		require.Equal(t, r.want, next, "report %d (%v)", i, r.reported)
		require.Equal(t, r.changed, changed, "report %d (%v)", i, r.reported)
		current = next
	}
}

func TestTransitionErrorMessage(t *testing.T) {
	t.Parallel()
	require.EqualError(t, parcel.Transition(parcel.StatusDelivered, parcel.StatusInTransit),
		"illegal parcel status transition from delivered to in_transit")
}

func TestTransitionEvent(t *testing.T) {
	t.Parallel()
	tests := []struct {
		from, to parcel.Status
		want     parcel.Event
		ok       bool
	}{
		{parcel.StatusOutForDelivery, parcel.StatusDelivered, parcel.EventDelivered, true},
		{parcel.StatusCreated, parcel.StatusDelivered, parcel.EventDelivered, true},
		{parcel.StatusPostponed, parcel.StatusRefused, parcel.EventRefused, true},
		{parcel.StatusRefused, parcel.StatusReturned, parcel.EventReturned, true},
		{parcel.StatusDelivered, parcel.StatusReturned, parcel.EventReturned, true},
		{parcel.StatusSent, parcel.StatusCancelled, parcel.EventCancelled, true},
		{parcel.StatusInTransit, parcel.StatusLost, "", false},
		{parcel.StatusSent, parcel.StatusInTransit, "", false},
		{parcel.StatusDelivered, parcel.StatusDelivered, "", false}, // repeat: no second event
		{parcel.StatusReturned, parcel.StatusReturned, "", false},
		{parcel.StatusCancelled, parcel.StatusDelivered, "", false}, // illegal
		{parcel.StatusDelivered, parcel.StatusRefused, "", false},   // illegal
	}
	for _, tt := range tests {
		t.Run(tt.from.String()+"->"+tt.to.String(), func(t *testing.T) {
			got, ok := parcel.TransitionEvent(tt.from, tt.to)
			require.Equal(t, tt.ok, ok)
			require.Equal(t, tt.want, got)
		})
	}
}
