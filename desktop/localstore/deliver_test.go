package localstore_test

import (
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/timestamppb"

	leadifyv1 "github.com/leadify/leadify/proto/gen/leadify/v1"
)

// delivery is a Subscribe delivery of the fixture's store from version from:
// the lead named after each version in (from, to].
func (f fixture) delivery(from, to int64, epoch int64) *leadifyv1.ScopeChanges {
	at := timestamppb.New(time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC))
	sc := &leadifyv1.ScopeChanges{ScopeId: f.store.String(), Kind: leadifyv1.ScopeKind_SCOPE_KIND_STORE, Epoch: epoch, Cursor: to}
	for v := from + 1; v <= to; v++ {
		sc.Changes = append(sc.Changes, &leadifyv1.Change{Version: v, Id: f.lead.String(), Table: "leads",
			Row: &leadifyv1.Change_Lead{Lead: &leadifyv1.LeadRow{Id: f.lead.String(), StoreId: f.store.String(),
				Status: "new", CustomerName: "v" + string(rune('0'+v)), CreatedAt: at, UpdatedAt: at}}})
	}
	return sc
}

func (f fixture) cursor(t *testing.T) int64 {
	t.Helper()
	cs, err := f.db.Cursors(t.Context())
	require.NoError(t, err)
	for _, c := range cs {
		if c.ScopeId == f.store.String() {
			return c.Version
		}
	}
	t.Fatal("no cursor")
	return 0
}

func TestDeliveredChangesContinueTheCursor(t *testing.T) {
	t.Parallel()
	f := newFixture(t) // cursor at 1

	// A delivery from the cursor applies and moves it.
	pull, err := f.db.ApplyDelivered(t.Context(), 1, f.delivery(1, 3, 1))
	require.NoError(t, err)
	require.False(t, pull)
	require.EqualValues(t, 3, f.cursor(t))
	require.Equal(t, "v3", f.get(t).CustomerName)

	// The same delivery again (a duplicate), or one the replica is past:
	// nothing changes and nothing needs pulling.
	pull, err = f.db.ApplyDelivered(t.Context(), 1, f.delivery(1, 3, 1))
	require.NoError(t, err)
	require.False(t, pull)
	require.EqualValues(t, 3, f.cursor(t))

	// One that starts below the cursor and ends above it (the replica pulled
	// meanwhile): only the changes above the cursor are applied.
	sc := f.delivery(1, 4, 1)
	stale := uuid.New() // a row at version 2, which the replica already has in a later state
	sc.Changes[0].Id, sc.Changes[0].GetLead().Id = stale.String(), stale.String()
	pull, err = f.db.ApplyDelivered(t.Context(), 1, sc)
	require.NoError(t, err)
	require.False(t, pull)
	require.EqualValues(t, 4, f.cursor(t))
	require.Equal(t, "v4", f.get(t).CustomerName)
	_, _, ok, err := f.db.Lead(t.Context(), stale)
	require.NoError(t, err)
	require.False(t, ok, "a change at or below the cursor was applied again")

	// One that starts above the cursor (a delivery was lost): pull instead,
	// nothing applied.
	pull, err = f.db.ApplyDelivered(t.Context(), 5, f.delivery(5, 6, 1))
	require.NoError(t, err)
	require.True(t, pull)
	require.EqualValues(t, 4, f.cursor(t))
	require.Equal(t, "v4", f.get(t).CustomerName)

	// Another epoch (the membership changed): pull, which re-syncs.
	pull, err = f.db.ApplyDelivered(t.Context(), 4, f.delivery(4, 5, 2))
	require.NoError(t, err)
	require.True(t, pull)
	require.EqualValues(t, 4, f.cursor(t))

	// A scope the replica has never pulled, and a page that is not whole.
	other := f.delivery(4, 5, 1)
	other.ScopeId = "3f1c8a52-51c4-4f6e-9d39-000000000000"
	pull, err = f.db.ApplyDelivered(t.Context(), 4, other)
	require.NoError(t, err)
	require.True(t, pull)
	more := f.delivery(4, 5, 1)
	more.HasMore = true
	pull, err = f.db.ApplyDelivered(t.Context(), 4, more)
	require.NoError(t, err)
	require.True(t, pull)
	require.EqualValues(t, 4, f.cursor(t))
}
