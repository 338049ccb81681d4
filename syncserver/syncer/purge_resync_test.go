package syncer_test

import (
	"context"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/require"

	leadifyv1 "github.com/leadify/leadify/proto/gen/leadify/v1"
	"github.com/leadify/leadify/syncserver/postgres"
	"github.com/leadify/leadify/syncserver/servertest"
	"github.com/leadify/leadify/syncserver/syncer"
)

// A replica that syncs a purged store from scratch in small pages gets to the
// end. Found by the simulation: every page after the first has a cursor under
// purged_below, so the server answered each with "resync required" and the
// first page again, for ever.
func TestPagedSyncOfAPurgedStoreEnds(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t)
	tn := env.NewTenant(env.Admin(), "purged-paging")
	ids := env.SeedLeads(tn.StoreID, 20, "Paged")
	ctx := context.Background()
	// The last leads are deleted long ago and purged: the purge mark sits
	// above every page a fresh replica's first pull can hold.
	require.NoError(t, syncer.Write(ctx, env.DB.App, postgres.StoreScope(tn.StoreID), func(w *syncer.Writer) error {
		first, err := w.Reserve(tn.StoreID, 2)
		if err != nil {
			return err
		}
		for i, id := range ids[18:] {
			if _, err := w.Tx.Exec(ctx, `UPDATE leads SET deleted_at = now() - interval '40 days', version = $3 WHERE store_id = $1 AND id = $2`,
				tn.StoreID, id, first+int64(i)); err != nil {
				return err
			}
		}
		return nil
	}))
	n, err := syncer.Purge(ctx, env.DB.App, time.Now().Add(-syncer.DefaultRetention))
	require.NoError(t, err)
	require.Equal(t, 2, n)

	client := newReplica(t, tn.Seller).client
	cursors := map[string]*leadifyv1.Cursor{}
	leads := map[string]bool{}
	for pages := 0; ; pages++ {
		require.Less(t, pages, 40, "a fresh sync of 18 leads in pages of 3 rows never ends")
		req := &leadifyv1.PullRequest{ClientId: client, MaxRows: 3}
		for _, c := range cursors {
			req.Cursors = append(req.Cursors, c)
		}
		resp, err := tn.Seller.Sync.Pull(ctx, connect.NewRequest(req))
		require.NoError(t, err)
		more := false
		for _, sc := range resp.Msg.Scopes {
			if sc.ResyncRequired && sc.ScopeId == tn.StoreID.String() {
				clear(leads)
			}
			for _, ch := range sc.Changes {
				if ch.Table == "leads" {
					leads[ch.Id] = !ch.Deleted
				}
			}
			cursors[sc.ScopeId] = &leadifyv1.Cursor{ScopeId: sc.ScopeId, Version: sc.Cursor, Epoch: sc.Epoch}
			more = more || sc.HasMore
		}
		if !more {
			break
		}
	}
	require.Len(t, leads, 18)
	for _, id := range ids[:18] {
		require.True(t, leads[id.String()], "lead %s", id)
	}
}
