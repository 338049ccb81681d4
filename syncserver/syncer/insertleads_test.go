package syncer_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/leadify/leadify/shared/lead"
	"github.com/leadify/leadify/shared/mutation"
	"github.com/leadify/leadify/syncserver/postgres"
	"github.com/leadify/leadify/syncserver/servertest"
	"github.com/leadify/leadify/syncserver/syncer"
)

// InsertLeads writes every field of every lead, across the statements it
// splits a big batch into, NULLs included, and gives each lead its
// customer's history (the seller's orders, deliveries and refusals from its
// phone), none for a lead without a phone.
func TestInsertLeadsWritesEveryField(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t)
	tn := env.NewTenant(env.Admin(), "insertleads")
	ctx := context.Background()
	const n = 1234 // three statements
	env.InStore(func(tx *postgres.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO customers (seller_id, phone_e164, name, first_seen, last_seen, orders, delivered, refusals)
VALUES ($1, '+212612345678', 'Salma', now(), now(), 7, 5, 1)`, tn.SellerID)
		return err
	}, tn.StoreID)
	var leads []mutation.Lead
	require.NoError(t, syncer.Write(ctx, env.DB.App, postgres.StoreScope(tn.StoreID), func(w *syncer.Writer) error {
		first, err := w.Reserve(tn.StoreID, n)
		if err != nil {
			return err
		}
		ls := asideLeads(tn.StoreID, first, n, "Lot")
		deleted := time.Date(2026, 2, 1, 10, 0, 0, 123456000, time.UTC)
		ls[1].DeletedAt = &deleted
		ls[2].AssignedTo, ls[2].LeaseUntil, ls[2].CallAttempts = tn.Agent.UserID, deleted.Add(time.Hour), 3
		ls[3].Status, ls[3].CallbackAt = lead.StatusCallback, deleted.Add(2*time.Hour)
		ls[4].Custom, ls[4].ExternalRef, ls[4].Score = map[string]string{"Couleur": "Bleu"}, "CMD-4", 87
		ls[5].DuplicateOf, ls[5].CancelReason, ls[5].Items = ls[0].ID, "doublon", nil
		ls[n-1].PhoneE164, ls[n-1].CustomerName = "", "الدار البيضاء"
		leads = ls
		return w.InsertLeads(ls)
	}))
	got := map[uuid.UUID]storedLead{}
	env.InStore(func(tx *postgres.Tx) error {
		rows, err := tx.Query(ctx, `SELECT id, version, created_at, updated_at, phone_raw, city_id, city_raw, address, source, deleted_at, status, customer_name, phone_e164, items::text, cod,
  custom::text, external_ref, coalesce(assigned_to, '00000000-0000-0000-0000-000000000000'), lease_until, call_attempts,
  callback_at, cancel_reason, coalesce(duplicate_of, '00000000-0000-0000-0000-000000000000'), score, customer_orders,
  customer_delivered, customer_refusals FROM leads WHERE store_id = $1`, tn.StoreID)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var l storedLead
			if err := rows.Scan(&l.ID, &l.Version, &l.CreatedAt, &l.UpdatedAt, &l.PhoneRaw, &l.CityID, &l.CityRaw, &l.Address, &l.Source, &l.DeletedAt, &l.Status, &l.CustomerName, &l.PhoneE164, &l.Items, &l.COD,
				&l.Custom, &l.ExternalRef, &l.AssignedTo, &l.LeaseUntil, &l.CallAttempts, &l.CallbackAt, &l.CancelReason,
				&l.DuplicateOf, &l.Score, &l.Orders, &l.Delivered, &l.Refusals); err != nil {
				return err
			}
			got[l.ID] = l
		}
		return rows.Err()
	}, tn.StoreID)
	require.Len(t, got, n)
	for i, l := range leads {
		g := got[l.ID]
		require.Equal(t, l.Version, g.Version, "lead %d", i)
		require.True(t, l.CreatedAt.Equal(g.CreatedAt) && l.UpdatedAt.Equal(g.UpdatedAt), "lead %d's times", i)
		require.Equal(t, [5]string{l.PhoneRaw, l.CityID, l.CityRaw, l.Address, l.Source},
			[5]string{g.PhoneRaw, g.CityID, g.CityRaw, g.Address, g.Source}, "lead %d", i)
		require.Equal(t, l.CustomerName, g.CustomerName, "lead %d", i)
		require.Equal(t, l.PhoneE164, g.PhoneE164, "lead %d", i)
		require.Equal(t, int64(l.COD), g.COD, "lead %d", i)
		if l.PhoneE164 == "" {
			require.Equal(t, [3]int32{}, [3]int32{g.Orders, g.Delivered, g.Refusals}, "no phone, no history")
		} else {
			require.Equal(t, [3]int32{7, 5, 1}, [3]int32{g.Orders, g.Delivered, g.Refusals}, "lead %d's customer history", i)
		}
	}
	g := got[leads[1].ID]
	require.NotNil(t, g.DeletedAt)
	require.True(t, leads[1].DeletedAt.Equal(*g.DeletedAt))
	require.Nil(t, got[leads[0].ID].DeletedAt)
	g = got[leads[2].ID]
	require.Equal(t, tn.Agent.UserID, g.AssignedTo)
	require.True(t, leads[2].LeaseUntil.Equal(*g.LeaseUntil))
	require.EqualValues(t, 3, g.CallAttempts)
	require.Nil(t, got[leads[0].ID].LeaseUntil)
	g = got[leads[3].ID]
	require.Equal(t, "callback", g.Status)
	require.True(t, leads[3].CallbackAt.Equal(*g.CallbackAt))
	g = got[leads[4].ID]
	require.JSONEq(t, `{"Couleur": "Bleu"}`, g.Custom)
	require.Equal(t, "CMD-4", g.ExternalRef)
	require.EqualValues(t, 87, g.Score)
	g = got[leads[5].ID]
	require.Equal(t, leads[0].ID, g.DuplicateOf)
	require.Equal(t, "doublon", g.CancelReason)
	require.JSONEq(t, `[]`, g.Items)
	require.JSONEq(t, `[{"sku": "ARG-100", "name": "Huile d'argan 100ml", "qty": 1, "unit_price": 12000}]`, got[leads[0].ID].Items)
	require.JSONEq(t, `{}`, got[leads[0].ID].Custom)
}

// storedLead is a leads row as read back.
type storedLead struct {
	ID, AssignedTo, DuplicateOf            uuid.UUID
	Version, COD                           int64
	CreatedAt, UpdatedAt                   time.Time
	DeletedAt, LeaseUntil, CallbackAt      *time.Time
	PhoneRaw, CityID, CityRaw, Address     string
	Source                                 string
	Status, CustomerName, PhoneE164, Items string
	Custom, ExternalRef, CancelReason      string
	CallAttempts, Score                    int32
	Orders, Delivered, Refusals            int32
}
