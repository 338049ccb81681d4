package localstore_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/leadify/leadify/desktop/localstore"
	leadifyv1 "github.com/leadify/leadify/proto/gen/leadify/v1"
	"github.com/leadify/leadify/shared/mutation"
)

// TestMoneyRowsFollowTheirScope: pulled invoices and commission entries are
// kept, replaced by newer versions, deleted when the server says so, and
// forgotten with their store's scope.
func TestMoneyRowsFollowTheirScope(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, err := localstore.Open(ctx, filepath.Join(t.TempDir(), "r.db"))
	require.NoError(t, err)
	defer db.Close()
	store, user := uuid.New(), uuid.New()
	require.NoError(t, db.SetIdentity(ctx, user, "Salma", []localstore.Membership{{StoreID: store, Role: mutation.RoleSeller}}))
	march := timestamppb.New(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))
	april := timestamppb.New(time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC))
	inv := func(v int64, status string) *leadifyv1.Change {
		return &leadifyv1.Change{Version: v, Id: "inv1", Table: "invoices", Row: &leadifyv1.Change_Invoice{Invoice: &leadifyv1.Invoice{
			Id: "inv1", StoreId: store.String(), Number: "FA-000001", Status: status, PeriodStart: march, PeriodEnd: april,
			Net: 1234_00, LineCount: 3, Pdf: []byte("%PDF-1.4")}}}
	}
	entry := &leadifyv1.Change{Version: 2, Id: "e1", Table: "commission_entries", Row: &leadifyv1.Change_CommissionEntry{
		CommissionEntry: &leadifyv1.CommissionEntry{Id: "e1", RuleId: "r", ParcelId: "p", Kind: "earn", Beneficiary: "platform",
			Status: "earned", Amount: 7_47, OccurredAt: march}}}
	page := func(cursor int64, changes ...*leadifyv1.Change) *leadifyv1.PullResponse {
		return &leadifyv1.PullResponse{Scopes: []*leadifyv1.ScopeChanges{{ScopeId: store.String(), Epoch: 1, Cursor: cursor,
			Changes: changes}}}
	}
	require.NoError(t, db.ApplyPage(ctx, page(2, inv(1, "issued"), entry)))
	require.NoError(t, db.ApplyPage(ctx, page(3, inv(3, "paid"))))
	invs, err := db.Invoices(ctx, store.String())
	require.NoError(t, err)
	require.Len(t, invs, 1)
	require.Equal(t, "paid", invs[0].Status)
	require.Equal(t, int64(1234_00), invs[0].Net)
	require.True(t, invs[0].PeriodStart.Equal(march.AsTime()))

	check, err := db.VerifyInvoice(ctx, "inv1")
	require.NoError(t, err)
	require.False(t, check.Valid, "an unsealed PDF does not verify")

	require.NoError(t, db.ApplyPage(ctx, &leadifyv1.PullResponse{RemovedScopes: []string{store.String()}}))
	invs, err = db.Invoices(ctx, store.String())
	require.NoError(t, err)
	require.Empty(t, invs, "a dropped scope takes its invoices")
	_, err = db.InvoicePDF(ctx, "inv1")
	require.ErrorIs(t, err, localstore.ErrNoInvoice)

	require.NoError(t, db.ApplyPage(ctx, page(4, inv(4, "issued"))))
	require.NoError(t, db.ApplyPage(ctx, page(5, &leadifyv1.Change{Version: 5, Id: "inv1", Table: "invoices", Deleted: true})))
	invs, err = db.Invoices(ctx, store.String())
	require.NoError(t, err)
	require.Empty(t, invs)
}
