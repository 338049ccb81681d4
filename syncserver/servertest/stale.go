package servertest

import (
	"context"
	"fmt"

	"github.com/google/uuid"

	"github.com/leadify/leadify/syncserver/postgres"
	"github.com/leadify/leadify/syncserver/syncer"
)

// StaleLeads makes a store whose leads and parcels the planner's statistics
// do not know, for tests of the plans of look-ups by key (see
// pgtest.RequireKeyed): it writes another store's leads and parcels,
// analyses both tables (keeping the statistics), then writes n leads of a
// new tenant's store through SeedLeads, 20,000 more copies of one of them
// and a parcel of each copy. It returns the tenant and the seeded leads.
func (e *Env) StaleLeads(n int) (*Tenant, []uuid.UUID) {
	e.T.Helper()
	admin := e.Admin()
	other := e.NewTenant(admin, "other"+uuid.NewString()[:6]).StoreID
	e.fillStore(other, e.SeedLeads(other, 1, "Other")[0], 5_000, 1)
	e.DB.Analyze(e.T, "leads", "parcels")
	tn := e.NewTenant(admin, "stale"+uuid.NewString()[:6])
	ids := e.SeedLeads(tn.StoreID, n, "Stale")
	e.fillStore(tn.StoreID, ids[0], 20_000, int64(n)+1)
	return tn, ids
}

// StaleStore makes a store whose rows of tables the planner's statistics do
// not know, for tests of the plans of look-ups by key (see
// pgtest.RequireKeyed): it writes other rows of another tenant's store
// through write, analyses the tables (keeping the statistics), then writes
// n rows of a new tenant's store through write, and returns that tenant.
// The store under test is written last, so what write keeps of the store it
// writes is the new store's.
func (e *Env) StaleStore(tables []string, other, n int, write func(store uuid.UUID, n int)) *Tenant {
	e.T.Helper()
	admin := e.Admin()
	write(e.NewTenant(admin, "other"+uuid.NewString()[:6]).StoreID, other)
	e.DB.Analyze(e.T, tables...)
	tn := e.NewTenant(admin, "stale"+uuid.NewString()[:6])
	write(tn.StoreID, n)
	return tn
}

// fillStore writes n copies of the store's lead, and a parcel of each,
// their versions from above.
func (e *Env) fillStore(store, lead uuid.UUID, n int, above int64) {
	e.T.Helper()
	ctx := context.Background()
	err := syncer.Write(ctx, e.DB.App, postgres.StoreScope(store), func(w *syncer.Writer) error {
		account := uuid.New()
		if _, err := w.Tx.Exec(ctx, `INSERT INTO carrier_accounts (id, store_id, carrier, credentials) VALUES ($1, $2, 'ameex', 'v1:x:y')`,
			account, store); err != nil {
			return err
		}
		v, err := w.Reserve(store, 1)
		if err != nil {
			return err
		}
		_, err = w.Tx.Exec(ctx, `INSERT INTO parcels (store_id, id, version, created_at, updated_at, lead_id, account_id, carrier,
  tracking, status, creation, cod) VALUES ($1, $2, $3, now(), now(), $4, $5, 'ameex', 'T0', 'delivered', 'created', 24900)`,
			store, uuid.New(), v, lead, account)
		return err
	})
	if err != nil {
		e.T.Fatalf("seed parcel: %v", err)
	}
	key := fmt.Sprintf("md5('%s' || g)::uuid", store) // the copies' ids, for their parcels' leads
	e.DB.Fill(e.T, "leads", fmt.Sprintf("store_id = '%s'", store), n,
		map[string]string{"id": key, "version": fmt.Sprintf("g + %d", above)})
	e.DB.Fill(e.T, "parcels", fmt.Sprintf("store_id = '%s'", store), n,
		map[string]string{"id": "gen_random_uuid()", "lead_id": key, "tracking": "'T' || g", "version": fmt.Sprintf("g + %d", above+int64(n))})
}
