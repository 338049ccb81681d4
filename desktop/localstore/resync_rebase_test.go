package localstore_test

import (
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/timestamppb"

	leadifyv1 "github.com/leadify/leadify/proto/gen/leadify/v1"
	"github.com/leadify/leadify/shared/mutation"
)

// A lead with pending mutations, dropped by a paged re-sync and brought back
// by a later page of it, shows the pending mutations applied again on the
// server's row (the membership kept throughout; the simulation's finding,
// where it was not, is the next test).
func TestPendingWorkReappliedWhenAResyncBringsTheLeadBack(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := t.Context()
	_, err := f.db.Do(ctx, f.store, &mutation.EditLead{Lead: f.lead, EventID: uuid.New(),
		Edits: mutation.Edits{Address: &mutation.Change[string]{Old: "1 Rue Atlas", New: "9 Rue Neuve"}}})
	require.NoError(t, err)
	require.Equal(t, "9 Rue Neuve", f.get(t).Address)

	// The re-sync's first page drops the store and does not reach the lead.
	require.NoError(t, f.db.ApplyPage(ctx, &leadifyv1.PullResponse{Scopes: []*leadifyv1.ScopeChanges{{
		ScopeId: f.store.String(), Epoch: 2, ResyncRequired: true, Cursor: 1, HasMore: true, Initial: true}}}))
	_, _, ok, err := f.db.Lead(ctx, f.lead)
	require.NoError(t, err)
	require.False(t, ok)

	// Its next page brings the lead back, as the server has it.
	at := timestamppb.New(time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC))
	require.NoError(t, f.db.ApplyPage(ctx, &leadifyv1.PullResponse{Scopes: []*leadifyv1.ScopeChanges{{
		ScopeId: f.store.String(), Epoch: 2, Cursor: 5, Changes: []*leadifyv1.Change{{Version: 5,
			Id: f.lead.String(), Table: "leads", Row: &leadifyv1.Change_Lead{Lead: &leadifyv1.LeadRow{Id: f.lead.String(),
				StoreId: f.store.String(), Status: "new", CustomerName: "Hassan", Address: "1 Rue Atlas", CreatedAt: at, UpdatedAt: at}}}}}}}))
	require.Equal(t, "9 Rue Neuve", f.get(t).Address, "the pending edit shows again on the server's row")
}

// Pending work on a lead that a pull brought back while the replica knew no
// membership of its store (a re-invited member, before the handshake that
// restores the membership) shows again once the membership is back. Found by
// the simulation: seed 1, step 293,472 (and seed 2, step 574,586).
func TestPendingWorkReappliedWhenTheMembershipComesBack(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	_, err := f.db.Do(t.Context(), f.store, &mutation.EditLead{Lead: f.lead, EventID: uuid.New(),
		Edits: mutation.Edits{Address: &mutation.Change[string]{Old: "1 Rue Atlas", New: "9 Rue Neuve"}}})
	require.NoError(t, err)
	require.Equal(t, "9 Rue Neuve", f.get(t).Address)

	// Removed (a handshake drops the membership), then the lead comes back in
	// a page: with no membership the edit cannot be re-applied.
	f.handshake(t, nil)
	f.page(t, 2, "new", "Hassan", false)
	require.Equal(t, "1 Rue Atlas", f.get(t).Address)

	// Re-invited: the handshake brings the membership back, and the edit shows.
	f.handshake(t, f.member())
	require.Equal(t, "9 Rue Neuve", f.get(t).Address, "the pending edit shows again once the membership is back")
	st, err := f.db.SyncState(t.Context())
	require.NoError(t, err)
	require.Equal(t, 1, st.Pending)
}
