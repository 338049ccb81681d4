package lead_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/leadify/leadify/shared/lead"
	"github.com/stretchr/testify/require"
)

func TestStatusStringParse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		status lead.Status
		name   string
	}{
		{lead.StatusNew, "new"},
		{lead.StatusNoAnswer, "no_answer"},
		{lead.StatusCallback, "callback"},
		{lead.StatusUnreachable, "unreachable"},
		{lead.StatusWrongNumber, "wrong_number"},
		{lead.StatusConfirmed, "confirmed"},
		{lead.StatusCancelled, "cancelled"},
		{lead.StatusDuplicate, "duplicate"},
	}
	require.Len(t, lead.Statuses(), len(tests))
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.status, lead.Statuses()[i])
			require.True(t, tt.status.Valid())
			require.Equal(t, tt.name, tt.status.String())
			got, err := lead.ParseStatus(tt.name)
			require.NoError(t, err)
			require.Equal(t, tt.status, got)
		})
	}
}

func TestParseStatusRejects(t *testing.T) {
	t.Parallel()
	for _, in := range []string{"", "New", " new", "new ", "canceled", "no answer", "Status(1)", "0"} {
		t.Run(in, func(t *testing.T) {
			_, err := lead.ParseStatus(in)
			require.ErrorIs(t, err, lead.ErrUnknownStatus)
			require.Contains(t, err.Error(), "lead status")
		})
	}
}

func TestInvalidStatus(t *testing.T) {
	t.Parallel()
	for _, s := range []lead.Status{0, 9, 255} {
		require.False(t, s.Valid())
		require.False(t, s.IsOpen())
		require.False(t, s.IsTerminal())
		require.Empty(t, lead.Targets(s))
		_, err := s.MarshalText()
		require.Error(t, err)
	}
	require.Equal(t, "Status(0)", lead.Status(0).String())
}

func TestStatusJSON(t *testing.T) {
	t.Parallel()
	type row struct {
		Status lead.Status `json:"status"`
	}
	b, err := json.Marshal(row{lead.StatusWrongNumber})
	require.NoError(t, err)
	require.JSONEq(t, `{"status":"wrong_number"}`, string(b))

	var got row
	require.NoError(t, json.Unmarshal(b, &got))
	require.Equal(t, lead.StatusWrongNumber, got.Status)

	require.ErrorIs(t, json.Unmarshal([]byte(`{"status":"shipped"}`), &got), lead.ErrUnknownStatus)
	_, err = json.Marshal(row{})
	require.Error(t, err, "the zero status must not be stored")
}

func TestOpenAndTerminal(t *testing.T) {
	t.Parallel()
	tests := []struct {
		status         lead.Status
		open, terminal bool
	}{
		{lead.StatusNew, true, false},
		{lead.StatusNoAnswer, true, false},
		{lead.StatusCallback, true, false},
		{lead.StatusUnreachable, true, false},
		{lead.StatusWrongNumber, false, false},
		{lead.StatusConfirmed, false, false},
		{lead.StatusCancelled, false, true},
		{lead.StatusDuplicate, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.status.String(), func(t *testing.T) {
			require.Equal(t, tt.open, tt.status.IsOpen())
			require.Equal(t, tt.terminal, tt.status.IsTerminal())
		})
	}
}

// allowed is the transition table written out by hand, one row per "from"
// status, so that the test does not reuse the package's own table.
var allowed = map[lead.Status][]lead.Status{
	lead.StatusNew: {
		lead.StatusNoAnswer, lead.StatusCallback, lead.StatusUnreachable, lead.StatusWrongNumber,
		lead.StatusConfirmed, lead.StatusCancelled, lead.StatusDuplicate,
	},
	lead.StatusNoAnswer: {
		lead.StatusNoAnswer, lead.StatusCallback, lead.StatusUnreachable, lead.StatusWrongNumber,
		lead.StatusConfirmed, lead.StatusCancelled, lead.StatusDuplicate,
	},
	lead.StatusCallback: {
		lead.StatusNoAnswer, lead.StatusCallback, lead.StatusUnreachable, lead.StatusWrongNumber,
		lead.StatusConfirmed, lead.StatusCancelled, lead.StatusDuplicate,
	},
	lead.StatusUnreachable: {
		lead.StatusNoAnswer, lead.StatusCallback, lead.StatusUnreachable, lead.StatusWrongNumber,
		lead.StatusConfirmed, lead.StatusCancelled, lead.StatusDuplicate,
	},
	lead.StatusWrongNumber: {lead.StatusNew, lead.StatusCancelled, lead.StatusDuplicate},
	lead.StatusConfirmed:   {lead.StatusCancelled},
	lead.StatusCancelled:   {},
	lead.StatusDuplicate:   {lead.StatusNew},
}

func TestTransitionsExhaustive(t *testing.T) {
	t.Parallel()
	// Every pair, including one invalid status on each side.
	all := append(lead.Statuses(), 0, 9)
	for _, from := range all {
		for _, to := range all {
			want := false
			for _, s := range allowed[from] {
				want = want || s == to
			}
			t.Run(from.String()+"->"+to.String(), func(t *testing.T) {
				require.Equal(t, want, lead.CanTransition(from, to))
				err := lead.Transition(from, to)
				if want {
					require.NoError(t, err)
					return
				}
				var te *lead.TransitionError
				require.ErrorAs(t, err, &te)
				require.Equal(t, from, te.From)
				require.Equal(t, to, te.To)
				require.Contains(t, err.Error(), from.String())
				require.Contains(t, err.Error(), to.String())
			})
		}
		if from.Valid() {
			require.ElementsMatch(t, allowed[from], lead.Targets(from), "targets of %v", from)
		}
	}
}

func TestTargetsIsACopy(t *testing.T) {
	t.Parallel()
	got := lead.Targets(lead.StatusConfirmed)
	got[0] = lead.StatusNew
	require.Equal(t, []lead.Status{lead.StatusCancelled}, lead.Targets(lead.StatusConfirmed))
}

func TestTransitionErrorMessage(t *testing.T) {
	t.Parallel()
	err := lead.Transition(lead.StatusCancelled, lead.StatusConfirmed)
	require.EqualError(t, err, "illegal lead status transition from cancelled to confirmed")
}

func TestOutcomes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		outcome lead.Outcome
		name    string
		status  lead.Status
	}{
		{lead.OutcomeNoAnswer, "no_answer", lead.StatusNoAnswer},
		{lead.OutcomeCallback, "callback", lead.StatusCallback},
		{lead.OutcomeUnreachable, "unreachable", lead.StatusUnreachable},
		{lead.OutcomeWrongNumber, "wrong_number", lead.StatusWrongNumber},
	}
	require.Len(t, lead.Outcomes(), len(tests))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.True(t, tt.outcome.Valid())
			require.Equal(t, tt.name, tt.outcome.String())
			require.Equal(t, tt.status, tt.outcome.Status())
			got, err := lead.ParseOutcome(tt.name)
			require.NoError(t, err)
			require.Equal(t, tt.outcome, got)
			text, err := tt.outcome.MarshalText()
			require.NoError(t, err)
			var back lead.Outcome
			require.NoError(t, back.UnmarshalText(text))
			require.Equal(t, tt.outcome, back)
		})
	}
	for _, in := range []string{"", "new", "confirmed", "cancelled", "duplicate", "NO_ANSWER"} {
		_, err := lead.ParseOutcome(in)
		require.ErrorIs(t, err, lead.ErrUnknownOutcome, "input %q", in)
	}
	require.False(t, lead.Outcome(0).Valid())
	require.Equal(t, lead.Status(0), lead.Outcome(0).Status())
	require.Equal(t, "Outcome(5)", lead.Outcome(5).String())
}

func TestRecord(t *testing.T) {
	t.Parallel()
	tests := []struct {
		from    lead.Status
		outcome lead.Outcome
		want    lead.Status
		illegal bool
	}{
		{lead.StatusNew, lead.OutcomeNoAnswer, lead.StatusNoAnswer, false},
		{lead.StatusNoAnswer, lead.OutcomeNoAnswer, lead.StatusNoAnswer, false},
		{lead.StatusCallback, lead.OutcomeCallback, lead.StatusCallback, false},
		{lead.StatusUnreachable, lead.OutcomeWrongNumber, lead.StatusWrongNumber, false},
		{lead.StatusWrongNumber, lead.OutcomeNoAnswer, lead.StatusWrongNumber, true},
		{lead.StatusConfirmed, lead.OutcomeCallback, lead.StatusConfirmed, true},
		{lead.StatusCancelled, lead.OutcomeNoAnswer, lead.StatusCancelled, true},
		{lead.StatusDuplicate, lead.OutcomeUnreachable, lead.StatusDuplicate, true},
	}
	for _, tt := range tests {
		t.Run(tt.from.String()+"+"+tt.outcome.String(), func(t *testing.T) {
			got, err := lead.Record(tt.from, tt.outcome)
			require.Equal(t, tt.want, got)
			if tt.illegal {
				var te *lead.TransitionError
				require.ErrorAs(t, err, &te)
				return
			}
			require.NoError(t, err)
		})
	}
	_, err := lead.Record(lead.StatusNew, 0)
	require.Error(t, err)
	var te *lead.TransitionError
	require.False(t, errors.As(err, &te))
}
