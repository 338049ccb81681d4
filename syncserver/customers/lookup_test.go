package customers_test

import (
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/leadify/leadify/syncserver/customers"
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
	ids := env.DB.Rows(t, tn.StoreID, true, `SELECT id::text FROM parcels WHERE store_id = $1 LIMIT 1000`, tn.StoreID)
	batch := []uuid.UUID{uuid.New()} // a parcel of no store
	for _, id := range ids {
		batch = append(batch, uuid.MustParse(id[1:len(id)-1]))
	}
	batch = append(batch, batch[1]) // and a repeat
	pgtest.RequireKeyed(t, env.DB.Explain(t, tn.StoreID, customers.ParcelCustomersSQL, tn.StoreID, batch), "parcels", "id")
	got := env.DB.Rows(t, tn.StoreID, true, customers.ParcelCustomersSQL, tn.StoreID, batch)
	require.Len(t, got, 1_000)
	require.Equal(t, env.DB.Rows(t, tn.StoreID, true, `SELECT p.id, s.seller_id, l.phone_e164
FROM parcels p JOIN leads l ON l.store_id = p.store_id AND l.id = p.lead_id JOIN stores s ON s.id = p.store_id
WHERE p.store_id = $1 AND p.id = ANY($2::uuid[]) AND l.phone_e164 <> ''`, tn.StoreID, batch), got)
}
