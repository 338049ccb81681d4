package servertest

import (
	"fmt"

	"github.com/google/uuid"
)

// StaleLeads makes a store whose leads the planner's statistics do not know,
// for tests of the plans of look-ups by key (see pgtest.RequireKeyed): it
// writes another store's leads, analyses leads (keeping the statistics),
// then writes n leads of a new tenant's store through SeedLeads and 20,000
// more copies of one of them. It returns the tenant and the seeded leads.
func (e *Env) StaleLeads(n int) (*Tenant, []uuid.UUID) {
	e.T.Helper()
	admin := e.Admin()
	other := e.NewTenant(admin, "other"+uuid.NewString()[:6]).StoreID
	e.SeedLeads(other, 1, "Other")
	e.DB.Fill(e.T, "leads", fmt.Sprintf("store_id = '%s'", other), 5_000,
		map[string]string{"id": "gen_random_uuid()", "version": "g + 1"})
	e.DB.Analyze(e.T, "leads")
	tn := e.NewTenant(admin, "stale"+uuid.NewString()[:6])
	ids := e.SeedLeads(tn.StoreID, n, "Stale")
	e.DB.Fill(e.T, "leads", fmt.Sprintf("store_id = '%s'", tn.StoreID), 20_000,
		map[string]string{"id": "gen_random_uuid()", "version": fmt.Sprintf("g + %d", n+1)})
	return tn, ids
}
