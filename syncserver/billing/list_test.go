package billing_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/leadify/leadify/shared/commission"
	"github.com/leadify/leadify/syncserver/billing"
	"github.com/leadify/leadify/syncserver/postgres"
)

// The ledger pages without gaps or repeats: the whole store's by its unique
// key, an agent's own by id; a token ListEntries did not write is refused.
func TestListEntriesPages(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.saveRules(f.store, agentRule(uuid.New(), commission.TriggerDelivered, 10_00), platformRule(uuid.New(), 300))
	src := deliveredParcels(f.store, f.agent, 45, 3)
	_, err := (&billing.Runner{Pool: f.pool, Reserve: f.reserve, Source: src}).Run(context.Background(), f.store, march)
	require.NoError(t, err)
	// Another store's entries never show.
	other := f.newStore("Other")
	f.saveRules(other, platformRule(uuid.New(), 300))
	_, err = (&billing.Runner{Pool: f.pool, Reserve: f.reserve, Source: parcels(other, f.agent, 10, 4)}).Run(context.Background(), other, march)
	require.NoError(t, err)

	page := func(agent uuid.UUID, token string, limit int) ([]billing.LedgerEntry, string, error) {
		var out []billing.LedgerEntry
		var next string
		err := postgres.InSnapshot(context.Background(), f.pool, postgres.StoreScope(f.store), func(tx *postgres.Tx) error {
			var err error
			out, next, err = billing.ListEntries(context.Background(), tx, f.store, agent, token, limit)
			return err
		})
		return out, next, err
	}
	all := func(agent uuid.UUID) []billing.LedgerEntry {
		var out []billing.LedgerEntry
		token := ""
		for range 100 {
			got, next, err := page(agent, token, 7)
			require.NoError(t, err)
			require.LessOrEqual(t, len(got), 7)
			out = append(out, got...)
			if next == "" {
				return out
			}
			token = next
		}
		t.Fatal("paging does not end")
		return nil
	}
	whole := all(uuid.Nil)
	require.Len(t, whole, 90)
	seen := map[uuid.UUID]bool{}
	for i, e := range whole {
		require.False(t, seen[e.ID], "entry %v twice", e.ID)
		seen[e.ID] = true
		if i > 0 {
			p := whole[i-1]
			c := bytes.Compare(p.ParcelID[:], e.ParcelID[:])
			if c == 0 {
				c = bytes.Compare(p.RuleID[:], e.RuleID[:])
			}
			require.Negative(t, c, "pages follow the ledger's key")
		}
	}
	own := all(f.agent)
	require.Len(t, own, 45)
	for i, e := range own {
		require.Equal(t, f.agent, e.Agent)
		if i > 0 {
			require.Negative(t, bytes.Compare(own[i-1].ID[:], e.ID[:]))
		}
	}
	for _, bad := range []string{"x", uuid.NewString(), uuid.NewString() + "/" + uuid.NewString() + "/", "a/b/c"} {
		_, _, err := page(uuid.Nil, bad, 5)
		require.ErrorIs(t, err, billing.ErrBadPageToken, bad)
	}
	_, _, err = page(f.agent, "nope", 5)
	require.ErrorIs(t, err, billing.ErrBadPageToken)
}
