package customers_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/leadify/leadify/syncserver/customers"
	"github.com/leadify/leadify/syncserver/postgres"
	"github.com/leadify/leadify/syncserver/postgres/pgtest"
	"github.com/leadify/leadify/syncserver/servertest"
)

// A batch of parcel outcomes reads its parcels' customers by parcel even
// when the planner's statistics do not know the store's parcels yet: a plan
// reading all of the store's parcels for every batch made a carrier's bulk
// update quadratic.
func TestParcelCustomersSearchByID(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t)
	tn, _ := env.StaleLeads(10)
	var ids []uuid.UUID
	env.InStore(func(tx *postgres.Tx) error {
		rows, err := tx.Query(context.Background(), `SELECT id FROM parcels WHERE store_id = $1 LIMIT 1000`, tn.StoreID)
		if err != nil {
			return err
		}
		ids, err = pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
		return err
	}, tn.StoreID)
	batch := append([]uuid.UUID{uuid.New()}, ids...) // a parcel of no store
	batch = append(batch, batch[1])                  // and a repeat
	pgtest.RequireKeyed(t, env.DB.Explain(t, tn.StoreID, customers.ParcelCustomersSQL, tn.StoreID, batch), "parcels", "id")
	got := env.DB.Rows(t, tn.StoreID, true, customers.ParcelCustomersSQL, tn.StoreID, batch)
	require.Len(t, got, 1_000)
	require.Equal(t, env.DB.Rows(t, tn.StoreID, true, `SELECT p.id, s.seller_id, l.phone_e164
FROM parcels p JOIN leads l ON l.store_id = p.store_id AND l.id = p.lead_id JOIN stores s ON s.id = p.store_id
WHERE p.store_id = $1 AND p.id = ANY($2::uuid[]) AND l.phone_e164 <> ''`, tn.StoreID, batch), got)
}

// The due customers among a batch's are read and crossed off by phone even
// when the planner's statistics do not know the store's due customers yet:
// not by a read of the store's whole backlog, filtered.
func TestDueCustomersSearchByPhone(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t)
	owner := env.DB.Owner(t)
	store := env.StaleStore([]string{"customer_history_due"}, 5_000, 20_000, func(store uuid.UUID, n int) {
		_, err := owner.Exec(context.Background(), `INSERT INTO customer_history_due (store_id, phone_e164)
SELECT $1, '+2126' || lpad(g::text, 8, '0') FROM generate_series(1, $2::int) g`, store, n)
		require.NoError(t, err)
	}).StoreID
	phones := []string{"+212700000000", "+212600000001"} // a customer not due, and a repeat
	for i := range 1_000 {
		phones = append(phones, fmt.Sprintf("+2126%08d", 1+i*7))
	}
	pgtest.RequireKeyed(t, env.DB.Explain(t, store, customers.DueSQL, store, phones), "customer_history_due", "phone_e164")
	pgtest.RequireKeyed(t, env.DB.Explain(t, store, customers.CrossOffSQL, store, phones), "customer_history_due", "phone_e164")
	got := env.DB.Rows(t, store, true, customers.DueSQL, store, phones)
	require.Len(t, got, 1_000)
	require.Equal(t, env.DB.Rows(t, store, true,
		`SELECT phone_e164 FROM customer_history_due WHERE store_id = $1 AND phone_e164 = ANY($2::text[])`, store, phones), got)
	require.Len(t, env.DB.Rows(t, store, false, customers.CrossOffSQL+` RETURNING 1`, store, phones), 1_000)
	require.Empty(t, env.DB.Rows(t, store, false, customers.DueSQL, store, phones))
	require.Len(t, env.DB.Rows(t, store, false, `SELECT 1 FROM customer_history_due WHERE store_id = $1`, store), 19_000)
}
