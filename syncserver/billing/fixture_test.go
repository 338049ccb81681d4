package billing_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/leadify/leadify/shared/commission"
	"github.com/leadify/leadify/shared/money"
	"github.com/leadify/leadify/shared/parcel"
	"github.com/leadify/leadify/syncserver/billing"
	"github.com/leadify/leadify/syncserver/postgres"
	"github.com/leadify/leadify/syncserver/postgres/pgtest"
)

var march = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)

// fixture is a database with one seller and its stores.
type fixture struct {
	t      testing.TB
	pool   *pgxpool.Pool
	seller uuid.UUID
	store  uuid.UUID
	agent  uuid.UUID
	db     *pgtest.DB // nil for fixtures on a servertest server
	// reserve is the side pool runs reserve versions aside on, as the
	// server's do.
	reserve *postgres.SidePool
}

func setup(t testing.TB) *fixture {
	t.Helper()
	db := pgtest.New(t)
	f := &fixture{t: t, pool: db.App, db: db, seller: uuid.New(), agent: uuid.New(), reserve: postgres.NewSidePool(db.App, 2)}
	t.Cleanup(f.reserve.Close)
	owner := uuid.New()
	f.exec(`INSERT INTO users (id, email, full_name, password_hash) VALUES ($1, $2, 'Salma', 'x'), ($3, $4, 'Sara', 'x')`,
		owner, owner.String()+"@t.test", f.agent, f.agent.String()+"@t.test")
	f.exec(`INSERT INTO sellers (id, name, owner_user_id) VALUES ($1, 'Argan SARL', $2)`, f.seller, owner)
	f.store = f.newStore("Argan Beauty")
	return f
}

func (f *fixture) newStore(name string) uuid.UUID {
	id := uuid.New()
	inv, _ := json.Marshal(map[string]any{"legalName": name + " SARL", "ice": "001234567000089", "vatRateBp": 2000,
		"vatApplicable": true, "address": "12 rue Ibn Batouta, Casablanca", "bankIban": "MA64 0110 0000 0000 1234 5678 9012"})
	f.exec(`INSERT INTO stores (id, seller_id, name, primary_color, accent_color, invoice) VALUES ($1, $2, $3, '#0F766E', '#F59E0B', $4)`,
		id, f.seller, name, inv)
	return id
}

func (f *fixture) exec(sql string, args ...any) {
	f.t.Helper()
	err := postgres.InTx(context.Background(), f.pool, postgres.Scope{AllStores: true}, func(tx *postgres.Tx) error {
		_, err := tx.Exec(context.Background(), sql, args...)
		return err
	})
	require.NoError(f.t, err)
}

func (f *fixture) saveRules(store uuid.UUID, rules ...commission.Rule) {
	f.t.Helper()
	err := postgres.InTx(context.Background(), f.pool, postgres.StoreScope(store), func(tx *postgres.Tx) error {
		for _, r := range rules {
			if err := billing.SaveRule(context.Background(), tx, store, uuid.Nil, r); err != nil {
				return err
			}
		}
		return nil
	})
	require.NoError(f.t, err)
}

// ledger sums the store's entries by beneficiary and counts them by kind.
type ledgerSummary struct {
	Agent, Platform money.Amount
	Earn, Reversal  int
	ByStatus        map[string]int
}

func (f *fixture) ledger(store uuid.UUID) ledgerSummary {
	f.t.Helper()
	s := ledgerSummary{ByStatus: map[string]int{}}
	err := postgres.InTx(context.Background(), f.pool, postgres.StoreScope(store), func(tx *postgres.Tx) error {
		rows, err := tx.Query(context.Background(), `SELECT beneficiary, kind, status, amount FROM commission_entries WHERE store_id = $1`, store)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var b, k, st string
			var a int64
			if err := rows.Scan(&b, &k, &st, &a); err != nil {
				return err
			}
			if b == "agent" {
				s.Agent += money.Amount(a)
			} else {
				s.Platform += money.Amount(a)
			}
			if k == "earn" {
				s.Earn++
			} else {
				s.Reversal++
			}
			s.ByStatus[st]++
		}
		return rows.Err()
	})
	require.NoError(f.t, err)
	return s
}

func agentRule(id uuid.UUID, trigger commission.Trigger, fixed money.Amount) commission.Rule {
	return commission.Rule{ID: id.String(), Name: "Prime " + string(trigger), Beneficiary: commission.BeneficiaryAgent,
		Trigger: trigger, Kind: commission.KindFixed, Fixed: fixed, ValidFrom: march.AddDate(0, -2, 0)}
}

func platformRule(id uuid.UUID, bp int64) commission.Rule {
	return commission.Rule{ID: id.String(), Name: "Frais plateforme", Beneficiary: commission.BeneficiaryPlatform,
		Trigger: commission.TriggerDelivered, Kind: commission.KindPercentage, RateBP: bp, ValidFrom: march.AddDate(0, -2, 0)}
}

// deliveredParcels is parcels with every one delivered.
func deliveredParcels(store, agent uuid.UUID, n int, seed uint64) billing.SliceSource {
	src := parcels(store, agent, n, seed)
	for i := range src {
		src[i].Status = parcel.StatusDelivered
	}
	return src
}

// parcels makes n parcels of the store in March, sorted by DeliveredAt: most
// delivered, some refused or returned.
func parcels(store, agent uuid.UUID, n int, seed uint64) billing.SliceSource {
	rng := rand.New(rand.NewPCG(seed, 1))
	cities := []string{"casablanca", "rabat", "marrakech", "fes", "tanger"}
	out := make(billing.SliceSource, n)
	for i := range n {
		at := march.Add(time.Hour + time.Duration(i)*time.Minute)
		st := parcel.StatusDelivered
		switch rng.IntN(10) {
		case 0:
			st = parcel.StatusRefused
		case 1:
			st = parcel.StatusReturned
		}
		out[i] = billing.DeliveredParcel{ID: uuid.New(), Store: store, Lead: uuid.New(), Agent: agent, Carrier: "coliix",
			City: cities[rng.IntN(len(cities))], Category: "beauty", Ref: fmt.Sprintf("CLX%08d", i),
			COD: money.Amount(99_00 + rng.Int64N(900_00)), DeliveryFee: 35_00, CODFee: 5_00, ReturnFee: 15_00,
			ConfirmedAt: at.Add(-30 * time.Minute), DeliveredAt: at, Status: st}
	}
	return out
}
