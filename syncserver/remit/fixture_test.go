package remit_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/leadify/leadify/shared/money"
	"github.com/leadify/leadify/syncserver/postgres"
	"github.com/leadify/leadify/syncserver/postgres/pgtest"
	"github.com/leadify/leadify/syncserver/remit"
	"github.com/leadify/leadify/syncserver/syncer"
)

var march = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)

// fixture is a database with one store and one carrier account.
type fixture struct {
	t       testing.TB
	db      *pgtest.DB
	pool    *pgxpool.Pool
	store   uuid.UUID
	account uuid.UUID
}

func setup(t testing.TB) *fixture {
	t.Helper()
	db := pgtest.New(t)
	f := &fixture{t: t, db: db, pool: db.App}
	f.store, f.account = f.newStore("Argan Beauty")
	return f
}

// newStore adds a seller, its store and a Coliix account.
func (f *fixture) newStore(name string) (store, account uuid.UUID) {
	owner, seller := uuid.New(), uuid.New()
	store, account = uuid.New(), uuid.New()
	f.exec(`INSERT INTO users (id, email, full_name, password_hash) VALUES ($1, $2, 'Salma', 'x')`, owner, owner.String()+"@t.test")
	f.exec(`INSERT INTO sellers (id, name, owner_user_id) VALUES ($1, $2, $3)`, seller, name+" SARL", owner)
	f.exec(`INSERT INTO stores (id, seller_id, name) VALUES ($1, $2, $3)`, store, seller, name)
	f.exec(`INSERT INTO carrier_accounts (id, store_id, carrier, label, credentials) VALUES ($1, $2, 'coliix', 'Coliix Casa', 'v1:x:y')`,
		account, store)
	return store, account
}

func (f *fixture) exec(sql string, args ...any) {
	f.t.Helper()
	err := postgres.InTx(context.Background(), f.pool, postgres.Scope{AllStores: true}, func(tx *postgres.Tx) error {
		_, err := tx.Exec(context.Background(), sql, args...)
		return err
	})
	require.NoError(f.t, err)
}

// fp is a parcel to seed.
type fp struct {
	Tracking string
	Status   string
	COD      money.Amount
	City     string
	At       time.Time
}

// seedParcels writes leads and their created parcels of the account.
func (f *fixture) seedParcels(store, account uuid.UUID, ps []fp) []uuid.UUID {
	f.t.Helper()
	ctx := context.Background()
	ids := make([]uuid.UUID, len(ps))
	err := syncer.Write(ctx, f.pool, postgres.StoreScope(store), func(w *syncer.Writer) error {
		first, err := w.Reserve(store, 2*len(ps))
		if err != nil {
			return err
		}
		// Plain inserts from arrays (not the bulk COPY path): only the
		// columns a parcel needs, the rest from the tables' defaults.
		n := len(ps)
		leads := make([]uuid.UUID, n)
		names, cities, trackings, statuses := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		cods := make([]int64, n)
		ats := make([]time.Time, n)
		for i, p := range ps {
			leads[i], ids[i] = uuid.Must(uuid.NewV7()), uuid.Must(uuid.NewV7())
			names[i], cities[i], trackings[i], statuses[i] = fmt.Sprintf("Client %d", i), p.City, p.Tracking, p.Status
			cods[i], ats[i] = int64(p.COD), p.At
		}
		if _, err := w.Tx.Exec(ctx, `INSERT INTO leads (store_id, id, version, created_at, updated_at, status, customer_name,
  phone_raw, phone_e164, city_id, city_raw, cod, source)
SELECT $1, u.id, $2 + u.ord - 1, u.at, u.at, 'confirmed', u.name, '0612345678', '+212612345678', u.city, u.city, u.cod, 'test'
FROM unnest($3::uuid[], $4::timestamptz[], $5::text[], $6::text[], $7::bigint[]) WITH ORDINALITY AS u(id, at, name, city, cod, ord)`,
			store, first, leads, ats, names, cities, cods); err != nil {
			return err
		}
		if _, err := w.Tx.Exec(ctx, `INSERT INTO parcels (store_id, id, version, created_at, updated_at, lead_id, account_id, carrier,
  tracking, status, creation, cod, city_id)
SELECT $1, u.id, $2 + u.ord - 1, u.at, u.at, u.lead, $3, 'coliix', u.tracking, u.status, 'created', u.cod, u.city
FROM unnest($4::uuid[], $5::uuid[], $6::timestamptz[], $7::text[], $8::text[], $9::bigint[], $10::text[])
  WITH ORDINALITY AS u(id, lead, at, tracking, status, cod, city, ord)`,
			store, first+int64(n), account, ids, leads, ats, trackings, statuses, cods, cities); err != nil {
			return err
		}
		return nil
	})
	require.NoError(f.t, err)
	return ids
}

func (f *fixture) savePrice(store uuid.UUID, p remit.PriceList) error {
	return postgres.InTx(context.Background(), f.pool, postgres.StoreScope(store), func(tx *postgres.Tx) error {
		return remit.SavePriceList(context.Background(), tx, store, uuid.Nil, &p)
	})
}

func (f *fixture) save(store, account uuid.UUID, ref string, source string, st *remit.Statement) (remit.Remittance, bool, error) {
	var rem remit.Remittance
	var already bool
	err := postgres.InTx(context.Background(), f.pool, postgres.StoreScope(store), func(tx *postgres.Tx) error {
		var err error
		rem, already, err = remit.Save(context.Background(), tx, store, uuid.Nil, account, ref, march.AddDate(0, 0, 20), source, st)
		return err
	})
	return rem, already, err
}

func (f *fixture) reconcile(store, id uuid.UUID) ([]remit.ReconciledLine, remit.Summary) {
	f.t.Helper()
	var lines []remit.ReconciledLine
	var sum remit.Summary
	err := postgres.InSnapshot(context.Background(), f.pool, postgres.StoreScope(store), func(tx *postgres.Tx) error {
		var err error
		_, lines, sum, err = remit.Reconcile(context.Background(), tx, store, id)
		return err
	})
	require.NoError(f.t, err)
	return lines, sum
}

// count returns a table's row count, across stores.
func (f *fixture) count(table string) int {
	f.t.Helper()
	var n int
	err := postgres.InTx(context.Background(), f.pool, postgres.Scope{AllStores: true}, func(tx *postgres.Tx) error {
		return tx.QueryRow(context.Background(), `SELECT count(*) FROM `+table).Scan(&n)
	})
	require.NoError(f.t, err)
	return n
}
