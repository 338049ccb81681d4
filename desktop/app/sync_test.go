package app_test

import (
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/leadify/leadify/desktop/app"
	"github.com/leadify/leadify/desktop/localstore"
	leadifyv1 "github.com/leadify/leadify/proto/gen/leadify/v1"
	"github.com/leadify/leadify/shared/mutation"
)

// The status counts what waits in the replica's outbox and its unseen conflicts.
func TestSyncStatusCountsTheReplica(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.signIn(t)

	db, err := localstore.Open(t.Context(), f.dbPath)
	require.NoError(t, err)
	defer db.Close()
	store, leadID, user := uuid.New(), uuid.New(), uuid.New()
	require.NoError(t, db.SetIdentity(t.Context(), user, "Sara", []localstore.Membership{{StoreID: store,
		Role: mutation.RoleSeller, Permissions: []string{"leads.call"}}}))
	now := timestamppb.New(time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC))
	require.NoError(t, db.ApplyPage(t.Context(), &leadifyv1.PullResponse{Scopes: []*leadifyv1.ScopeChanges{{
		ScopeId: store.String(), Epoch: 1, Cursor: 1, Changes: []*leadifyv1.Change{{Version: 1, Id: leadID.String(), Table: "leads",
			Row: &leadifyv1.Change_Lead{Lead: &leadifyv1.LeadRow{Id: leadID.String(), StoreId: store.String(), Status: "new",
				CreatedAt: now, UpdatedAt: now}}}}}}}))
	for range 2 {
		_, err := db.Do(t.Context(), store, &mutation.AddNote{Lead: leadID, EventID: uuid.New(), Note: "waiting"})
		require.NoError(t, err)
	}
	// The server refused the first: a conflict, and one left pending.
	client, err := db.ClientID(t.Context())
	require.NoError(t, err)
	require.NoError(t, db.ApplyPage(t.Context(), &leadifyv1.PullResponse{Scopes: []*leadifyv1.ScopeChanges{{
		ScopeId: user.String(), Epoch: 1, Cursor: 1, Changes: []*leadifyv1.Change{{Version: 1, Id: uuid.NewString(), Table: "rejections",
			Row: &leadifyv1.Change_Rejection{Rejection: &leadifyv1.RejectionRow{ClientId: client.String(), MutationId: 1,
				MutationName: "AddNote", StoreId: store.String(), LeadId: leadID.String(), Code: "not_holder",
				Reason: "Lead was claimed by Karim"}}}}}}}))
	require.NoError(t, db.SetLastSync(t.Context(), time.Date(2026, 5, 1, 10, 30, 0, 0, time.UTC)))

	st, err := f.app.Sync.Status()
	require.NoError(t, err)
	require.Equal(t, app.Status{Online: true, LastContactAt: "2026-05-01T10:42:00Z", Pending: 1, Conflicts: 1,
		LastSyncAt: "2026-05-01T10:30:00Z"}, st)
}
