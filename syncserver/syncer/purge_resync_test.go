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
			cursors[sc.ScopeId] = &leadifyv1.Cursor{ScopeId: sc.ScopeId, Version: sc.Cursor, Epoch: sc.Epoch,
				Initial: sc.Initial, InitialPurged: sc.InitialPurged}
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

// A sync from zero carries its purge mark: if the mark moves before it is
// done, rows it already holds may have lost their tombstones, so it starts over.
func TestCatchingUpUnderAMovedPurgeMarkResyncs(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t)
	tn := env.NewTenant(env.Admin(), "purge-moved")
	ids := env.SeedLeads(tn.StoreID, 6, "Moved")
	ctx := context.Background()
	require.NoError(t, syncer.Write(ctx, env.DB.App, postgres.StoreScope(tn.StoreID), func(w *syncer.Writer) error {
		v, err := w.Reserve(tn.StoreID, 1)
		if err != nil {
			return err
		}
		_, err = w.Tx.Exec(ctx, `UPDATE leads SET deleted_at = now() - interval '40 days', version = $3 WHERE store_id = $1 AND id = $2`,
			tn.StoreID, ids[5], v)
		return err
	}))
	_, err := syncer.Purge(ctx, env.DB.App, time.Now().Add(-syncer.DefaultRetention))
	require.NoError(t, err)

	client := newReplica(t, tn.Seller).client
	pull := func(c *leadifyv1.Cursor) *leadifyv1.ScopeChanges {
		req := &leadifyv1.PullRequest{ClientId: client, MaxRows: 2}
		if c != nil {
			req.Cursors = []*leadifyv1.Cursor{c}
		}
		resp, err := tn.Seller.Sync.Pull(ctx, connect.NewRequest(req))
		require.NoError(t, err)
		for _, sc := range resp.Msg.Scopes {
			if sc.ScopeId == tn.StoreID.String() {
				return sc
			}
		}
		t.Fatal("no store scope in the answer")
		return nil
	}
	first := pull(nil)
	require.True(t, first.HasMore)
	require.True(t, first.Initial, "a sync from zero with more to come")
	next := &leadifyv1.Cursor{ScopeId: first.ScopeId, Version: first.Cursor, Epoch: first.Epoch,
		Initial: first.Initial, InitialPurged: first.InitialPurged}
	require.False(t, pull(next).ResyncRequired, "catching up under the mark it began under")

	moved := &leadifyv1.Cursor{ScopeId: first.ScopeId, Version: first.Cursor, Epoch: first.Epoch,
		Initial: true, InitialPurged: first.InitialPurged - 1}
	require.True(t, pull(moved).ResyncRequired, "the mark moved since the sync began")
	stale := &leadifyv1.Cursor{ScopeId: first.ScopeId, Version: first.Cursor, Epoch: first.Epoch}
	require.True(t, pull(stale).ResyncRequired, "a replica not catching up, under the mark")
}
