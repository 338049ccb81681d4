package mutation_test

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/leadify/leadify/shared/lead"
	"github.com/leadify/leadify/shared/money"
	"github.com/leadify/leadify/shared/mutation"
)

// allEdits edits every field.
var allEdits = mutation.Edits{
	CustomerName: &mutation.Change[string]{Old: "Fatima", New: "Fatima Zahra <FZ> & co"},
	Phone:        &mutation.Change[string]{Old: "0612345678", New: "٠٦٩٨٧٦٥٤٣٢"},
	City:         &mutation.Change[string]{Old: "", New: "الدار البيضاء"},
	Address:      &mutation.Change[string]{Old: "a\u2028b", New: "line 1\nline 2"},
	Items: &mutation.Change[[]mutation.Item]{
		Old: nil,
		New: []mutation.Item{{SKU: "A", Name: "Argan", Qty: 2, UnitPrice: 12050}, {Name: "Soap", Qty: 1}},
	},
	COD: &mutation.Change[money.Amount]{Old: 0, New: 25050},
}

// roundTrips are mutations worth a round trip besides the samples.
func roundTrips() []mutation.Mutation {
	ms := []mutation.Mutation{
		mutation.RecordCall{Lead: leadID, EventID: eventID, Outcome: lead.OutcomeCallback,
			CallbackAt: time.Date(2025, 6, 2, 9, 30, 0, 0, time.UTC)},
		mutation.RecordCall{Lead: leadID, EventID: eventID, Outcome: lead.OutcomeWrongNumber},
		mutation.ConfirmLead{Lead: leadID, EventID: eventID, Edits: allEdits},
		mutation.EditLead{Lead: leadID, EventID: eventID, Edits: allEdits},
		mutation.EditLead{Lead: leadID, EventID: eventID, Edits: mutation.Edits{
			Items: &mutation.Change[[]mutation.Item]{Old: []mutation.Item{{Name: "x", Qty: 1}}, New: []mutation.Item{}},
		}},
		mutation.AssignLead{Lead: leadID, EventID: eventID}, // back to the pool
	}
	for _, s := range samples() {
		ms = append(ms, s.m)
	}
	return ms
}

func TestRoundTrip(t *testing.T) {
	for _, m := range roundTrips() {
		name, version, args, err := mutation.Encode(m)
		require.NoError(t, err)
		require.Equal(t, m.Name(), name)
		require.Equal(t, 1, version)
		got, err := mutation.Decode(name, version, args)
		require.NoError(t, err, "%s", args)
		require.Equal(t, m, got)
		_, _, again, err := mutation.Encode(got)
		require.NoError(t, err)
		require.Equal(t, string(args), string(again), "the encoding is canonical")
	}
}

func TestEncodeIsReadable(t *testing.T) {
	_, _, args, err := mutation.Encode(mutation.RecordCall{Lead: leadID, EventID: eventID, Outcome: lead.OutcomeCallback,
		Note: "<after 6pm>", CallbackAt: time.Date(2025, 6, 2, 9, 30, 0, 0, time.UTC)})
	require.NoError(t, err)
	require.JSONEq(t, `{"lead_id":"01900000-0000-7000-8000-0000000000a1","event_id":"01900000-0000-7000-8000-0000000000e1",
		"outcome":"callback","note":"<after 6pm>","callback_at":"2025-06-02T09:30:00Z"}`, string(args))
	require.Contains(t, string(args), "<after 6pm>", "no HTML escaping")

	_, _, args, err = mutation.Encode(mutation.ConfirmLead{Lead: leadID, EventID: eventID})
	require.NoError(t, err)
	require.JSONEq(t, `{"lead_id":"01900000-0000-7000-8000-0000000000a1","event_id":"01900000-0000-7000-8000-0000000000e1"}`, string(args))
}

// TestEncodePointer: a pointer to a mutation encodes as the mutation does;
// Decode returns values.
func TestEncodePointer(t *testing.T) {
	m := mutation.AddNote{Lead: leadID, EventID: eventID, Note: "x"}
	name, version, args, err := mutation.Encode(&m)
	require.NoError(t, err)
	_, _, want, err := mutation.Encode(m)
	require.NoError(t, err)
	require.Equal(t, want, args)
	got, err := mutation.Decode(name, version, args)
	require.NoError(t, err)
	require.Equal(t, m, got)
}

func TestDecodeNormalizesTimes(t *testing.T) {
	args := `{"lead_id":"` + leadID.String() + `","event_id":"` + eventID.String() +
		`","outcome":"callback","callback_at":"2025-06-02T10:30:00+01:00"}`
	m, err := mutation.Decode("RecordCall", 1, []byte(args))
	require.NoError(t, err)
	require.Equal(t, time.Date(2025, 6, 2, 9, 30, 0, 0, time.UTC), m.(mutation.RecordCall).CallbackAt)
}

func TestDecodeRefuses(t *testing.T) {
	ids := `"lead_id":"` + leadID.String() + `","event_id":"` + eventID.String() + `"`
	obj := func(fields string) string {
		if fields == "" {
			return "{" + ids + "}"
		}
		return "{" + ids + "," + fields + "}"
	}
	tests := []struct {
		name, mutation string
		version        int
		args           string
		want           string // in the error
	}{
		{"unknown name", "DeleteLead", 1, obj(""), "unknown mutation"},
		{"version 2", "AddNote", 2, obj(`"note":"x"`), "unknown mutation"},
		{"version 0", "AddNote", 0, obj(`"note":"x"`), "unknown mutation"},
		{"lower-case name", "addnote", 1, obj(`"note":"x"`), "unknown mutation"},
		{"unknown field", "AddNote", 1, obj(`"note":"x","pinned":true`), `unknown field "pinned"`},
		{"upper-case field", "AddNote", 1, obj(`"Note":"x"`), `bad or repeated field "Note"`},
		{"repeated field", "AddNote", 1, obj(`"note":"x","note":"y"`), `bad or repeated field "note"`},
		{"repeated nested field", "EditLead", 1, obj(`"edits":{"items":{"old":[],"new":[{"name":"x","name":"y","qty":1}]}}`), `bad or repeated field "name"`},
		{"Kelvin sign folded to k", "EditLead", 1, obj(`"edits":{"address":{"old":"a","new":"b"}},"Key":1`), "bad or repeated field"},
		{"unknown nested field", "EditLead", 1, obj(`"edits":{"phone":{"old":"1","new":"2","why":"x"}}`), `unknown field "why"`},
		{"missing lead id", "AddNote", 1, `{"event_id":"` + eventID.String() + `","note":"x"}`, "lead id is missing"},
		{"nil lead id", "ReleaseLead", 1, `{"lead_id":"` + uuid.Nil.String() + `","event_id":"` + eventID.String() + `"}`, "lead id is missing"},
		{"empty lead id", "ReleaseLead", 1, `{"lead_id":"","event_id":"` + eventID.String() + `"}`, "invalid UUID"},
		{"missing event id", "ReleaseLead", 1, `{"lead_id":"` + leadID.String() + `"}`, "event id is missing"},
		{"huge note", "AddNote", 1, obj(`"note":"` + strings.Repeat("ب", 2001) + `"`), "longer than 2000"},
		{"blank note", "AddNote", 1, obj(`"note":" "`), "note is empty"},
		{"NUL in a note", "AddNote", 1, obj(`"note":"a\u0000"`), "control character"},
		{"huge args", "AddNote", 1, obj(`"note":"x"`) + strings.Repeat(" ", mutation.MaxArgsSize), "more than 65536"},
		{"trailing garbage", "AddNote", 1, obj(`"note":"x"`) + "x", "trailing data"},
		{"two objects", "AddNote", 1, obj(`"note":"x"`) + obj(`"note":"y"`), "trailing data"},
		{"not an object", "AddNote", 1, `["x"]`, "cannot unmarshal"},
		{"null", "ReleaseLead", 1, `null`, "lead id is missing"},
		{"empty", "ReleaseLead", 1, ``, "EOF"},
		{"truncated", "ReleaseLead", 1, `{"lead_id":`, "EOF"},
		{"invalid UTF-8", "AddNote", 1, obj(`"note":"` + "\xff" + `"`), "UTF-8"},
		{"lead id as a number", "ReleaseLead", 1, `{"lead_id":5,"event_id":"` + eventID.String() + `"}`, "cannot unmarshal"},
		{"outcome as a number", "RecordCall", 1, obj(`"outcome":1`), "cannot unmarshal"},
		{"unknown outcome", "RecordCall", 1, obj(`"outcome":"confirmed"`), "unknown call outcome"},
		{"no outcome", "RecordCall", 1, obj(""), "outcome is missing"},
		{"callback without time", "RecordCall", 1, obj(`"outcome":"callback"`), "needs a time"},
		{"bad time", "RecordCall", 1, obj(`"outcome":"callback","callback_at":"tomorrow"`), "cannot parse"},
		{"amount as text", "EditLead", 1, obj(`"edits":{"cod":{"old":0,"new":"12"}}`), "cannot unmarshal"},
		{"fractional amount", "EditLead", 1, obj(`"edits":{"cod":{"old":0,"new":1.5}}`), "cannot unmarshal"},
		{"quantity as text", "EditLead", 1, obj(`"edits":{"items":{"old":[],"new":[{"name":"x","qty":"2"}]}}`), "cannot unmarshal"},
		{"empty edits", "EditLead", 1, obj(`"edits":{}`), "no field is edited"},
		{"no edits", "EditLead", 1, obj(""), "no field is edited"},
		{"null edit", "EditLead", 1, obj(`"edits":{"phone":null}`), "no field is edited"},
		{"too many items", "EditLead", 1, obj(`"edits":{"items":{"old":[],"new":[` + strings.TrimSuffix(strings.Repeat(`{"name":"x","qty":1},`, 101), ",") + `]}}`), "at most 100 items"},
		{"item without name", "ConfirmLead", 1, obj(`"edits":{"items":{"old":[],"new":[{"qty":1}]}}`), "item 1 has no name"},
		{"negative unit price", "ConfirmLead", 1, obj(`"edits":{"items":{"old":[],"new":[{"name":"x","qty":1,"unit_price":-1}]}}`), "unit price is negative"},
		{"duplicate of itself", "MarkDuplicate", 1, obj(`"duplicate_of":"` + leadID.String() + `"`), "duplicate of itself"},
		{"cancel without reason", "CancelLead", 1, obj(""), "cancel reason is empty"},
		{"agent id garbage", "AssignLead", 1, obj(`"agent_id":"sara"`), "invalid UUID"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := mutation.Decode(tc.mutation, tc.version, []byte(tc.args))
			require.Error(t, err)
			require.Nil(t, m)
			require.Contains(t, err.Error(), tc.want)
			if tc.want == "unknown mutation" {
				require.ErrorIs(t, err, mutation.ErrUnknown)
			} else {
				require.NotErrorIs(t, err, mutation.ErrUnknown)
			}
		})
	}
}

// TestDecodeRefusesWhatEncodeWould: a raw U+2028 takes 3 bytes in the input
// and 6 once encoded, so args under the limit can encode over it.
func TestDecodeRefusesWhatEncodeWould(t *testing.T) {
	old := strings.Repeat("\u2028", 20_000)
	m := mutation.EditLead{Lead: leadID, EventID: eventID, Edits: mutation.Edits{
		Address: &mutation.Change[string]{Old: old, New: "x"},
	}}
	_, _, _, err := mutation.Encode(m)
	require.ErrorContains(t, err, "more than 65536")

	args := `{"lead_id":"` + leadID.String() + `","event_id":"` + eventID.String() + `","edits":{"address":{"old":"` + old + `","new":"x"}}}`
	require.Less(t, len(args), mutation.MaxArgsSize)
	_, err = mutation.Decode("EditLead", 1, []byte(args))
	require.ErrorContains(t, err, "once encoded")
}

func TestEncodeRefuses(t *testing.T) {
	_, _, _, err := mutation.Encode(nil)
	require.Error(t, err)
	_, _, _, err = mutation.Encode(mutation.AddNote{Lead: leadID, Note: "x"})
	require.ErrorContains(t, err, "event id is missing")
	_, _, _, err = mutation.Encode(mutation.RecordCall{Lead: leadID, EventID: eventID, Outcome: lead.OutcomeCallback,
		CallbackAt: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)})
	require.Error(t, err, "a year JSON cannot hold")
}

func TestKnown(t *testing.T) {
	want := []string{
		"AddNote@1", "AssignLead@1", "CancelLead@1", "ConfirmLead@1", "EditLead@1",
		"MarkDuplicate@1", "RecordCall@1", "ReleaseLead@1", "UnmarkDuplicate@1",
	}
	require.Equal(t, want, mutation.Known())

	// Every known mutation decodes to itself, and every sample is known.
	var sampled []string
	for _, s := range samples() {
		name, version, args, err := mutation.Encode(s.m)
		require.NoError(t, err)
		sampled = append(sampled, name+"@1")
		m, err := mutation.Decode(name, version, args)
		require.NoError(t, err)
		require.Equal(t, name, m.Name())
		require.Equal(t, version, m.Version())
		require.Equal(t, leadID, m.LeadID())
	}
	require.ElementsMatch(t, want, sampled)
}

func TestSetHash(t *testing.T) {
	sum := sha256.Sum256([]byte(strings.Join(mutation.Known(), "\n")))
	require.Equal(t, hex.EncodeToString(sum[:]), mutation.SetHash())
	// A change of this value is a change of the handshake: old clients will
	// be told to update. Change it only with the mutation set.
	require.Equal(t, "3746419cc9dfcae22bbd833413c1b9729ecc3353c32bf4814b1b856a3422b345", mutation.SetHash())
}
