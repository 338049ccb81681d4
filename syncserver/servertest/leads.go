package servertest

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/leadify/leadify/shared/lead"
	"github.com/leadify/leadify/shared/money"
	"github.com/leadify/leadify/shared/mutation"
	"github.com/leadify/leadify/syncserver/postgres"
	"github.com/leadify/leadify/syncserver/syncer"
)

// SeedLeads writes n new pool leads into a store through the versioned-write
// helper, named "<prefix> <i>", and returns their ids in creation order.
func (e *Env) SeedLeads(store uuid.UUID, n int, prefix string) []uuid.UUID {
	e.T.Helper()
	ids := make([]uuid.UUID, n)
	now := time.Now().UTC().Truncate(time.Microsecond)
	for start := 0; start < n; start += syncer.BulkChunk {
		end := min(start+syncer.BulkChunk, n)
		err := syncer.Write(context.Background(), e.DB.App, postgres.StoreScope(store), func(w *syncer.Writer) error {
			first, err := w.Reserve(store, end-start)
			if err != nil {
				return err
			}
			leads := make([]mutation.Lead, 0, end-start)
			for i := start; i < end; i++ {
				id := uuid.Must(uuid.NewV7())
				ids[i] = id
				leads = append(leads, mutation.Lead{ID: id, StoreID: store, Version: first + int64(i-start),
					CreatedAt: now.Add(time.Duration(i) * time.Microsecond), UpdatedAt: now, Status: lead.StatusNew,
					CustomerName: fmt.Sprintf("%s %d", prefix, i), PhoneRaw: "0612345678", PhoneE164: "+212612345678",
					CityID: "casablanca", CityRaw: "Casa", Address: prefix + " street",
					Items: []mutation.Item{{SKU: "ARG-100", Name: "Huile d'argan 100ml", Qty: 1, UnitPrice: 120 * money.Dirham}},
					COD:   120 * money.Dirham, Source: "test"})
			}
			return w.InsertLeads(leads)
		})
		if err != nil {
			e.T.Fatalf("seed leads: %v", err)
		}
	}
	return ids
}
