package mutation_test

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/leadify/leadify/shared/lead"
	"github.com/leadify/leadify/shared/mutation"
)

// addSeeds adds every round-trip mutation, encoded, through add.
func addSeeds(f *testing.F, add func(name string, version int, args []byte)) {
	for _, m := range roundTrips() {
		name, version, args, err := mutation.Encode(m)
		require.NoError(f, err)
		add(name, version, args)
	}
}

// FuzzDecode: Decode never panics, and whatever it accepts encodes and
// decodes back to an equal mutation, with a canonical encoding.
func FuzzDecode(f *testing.F) {
	addSeeds(f, func(name string, version int, args []byte) { f.Add(name, version, args) })
	f.Add("RecordCall", 1, []byte(`{"lead_id":"01900000-0000-7000-8000-0000000000a1","event_id":"01900000-0000-7000-8000-0000000000e1","outcome":"callback","callback_at":"2025-06-02T10:30:00+01:00"}`))
	f.Add("AddNote", 2, []byte(`{}`))
	f.Add("AddNote", 1, []byte(`null`))
	f.Fuzz(func(t *testing.T, name string, version int, args []byte) {
		m, err := mutation.Decode(name, version, args)
		if err != nil {
			require.Nil(t, m)
			return
		}
		name2, version2, args2, err := mutation.Encode(m)
		require.NoError(t, err)
		require.Equal(t, name, name2)
		require.Equal(t, version, version2)
		m2, err := mutation.Decode(name2, version2, args2)
		require.NoError(t, err, "%s", args2)
		require.Equal(t, m, m2)
		_, _, args3, err := mutation.Encode(m2)
		require.NoError(t, err)
		require.Equal(t, args2, args3)
	})
}

// FuzzApply decodes fuzzed arguments of a known mutation and applies them to
// a fixed lead (with the mutation's lead id) in a fuzzed status, by one of a
// few actors. Apply never panics, never modifies its input, is repeatable,
// and either keeps every invariant of an applied mutation or gives a reason.
func FuzzApply(f *testing.F) {
	known := mutation.Known()
	index := map[string]uint8{}
	for i, k := range known {
		index[k] = uint8(i)
	}
	addSeeds(f, func(name string, version int, args []byte) {
		for actor := range uint8(3) {
			f.Add(index[name+"@"+strconv.Itoa(version)], args, actor, uint8(0))
		}
	})
	f.Fuzz(func(t *testing.T, which uint8, args []byte, actor, st uint8) {
		name, version, _ := strings.Cut(known[int(which)%len(known)], "@")
		v, _ := strconv.Atoi(version)
		m, err := mutation.Decode(name, v, args)
		if err != nil {
			return
		}
		actors := []mutation.Env{sara(), seller(), karim(), admin(), without(sara(), "leads.call"), env(saraID, "", agentPerms...)}
		e := actors[int(actor)%len(actors)]
		statuses := lead.Statuses()
		cur := baseLead()
		cur.ID = m.LeadID()
		cur.Status = statuses[int(st)%len(statuses)]
		switch cur.Status {
		case lead.StatusCallback:
			cur.CallbackAt = now.Add(2 * time.Hour)
		case lead.StatusDuplicate:
			cur.DuplicateOf = otherID
		}
		if st >= 128 {
			leaseLapsed(cur)
		}
		before := clone(cur)

		res, rej := m.Apply(e, cur)
		require.Equal(t, before, cur, "Apply modified its input")
		again, rejAgain := m.Apply(e, clone(cur))
		require.Equal(t, res, again)
		require.Equal(t, rej, rejAgain)
		if rej != nil {
			require.Zero(t, res)
			require.NotEmpty(t, rej.Reason)
			require.Contains(t, []mutation.Code{
				mutation.CodeNotFound, mutation.CodeForbidden, mutation.CodeNotHolder,
				mutation.CodeTransition, mutation.CodeStale, mutation.CodeInvalid,
			}, rej.Code)
			return
		}
		requireInvariants(t, e, cur, res)
		_, err = json.Marshal(res)
		require.NoError(t, err, "the rows can be stored")
	})
}
