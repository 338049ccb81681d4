package billing_test

import (
	"context"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"golang.org/x/text/unicode/norm"

	"github.com/leadify/leadify/shared/commission"
	"github.com/leadify/leadify/shared/money"
	"github.com/leadify/leadify/shared/parcel"
	"github.com/leadify/leadify/syncserver/billing"
	"github.com/leadify/leadify/syncserver/events"
	"github.com/leadify/leadify/syncserver/postgres"
	"github.com/leadify/leadify/syncserver/syncer"
)

func (f *fixture) statement(agent uuid.UUID, from, to time.Time) *billing.PayoutStatement {
	f.t.Helper()
	var st *billing.PayoutStatement
	require.NoError(f.t, postgres.InSnapshot(context.Background(), f.pool, postgres.StoreScope(f.store), func(tx *postgres.Tx) error {
		var err error
		st, err = billing.AgentStatement(context.Background(), tx, f.store, agent, from, to)
		return err
	}))
	return st
}

func (f *fixture) reverse(p uuid.UUID, at time.Time) {
	f.t.Helper()
	ev := events.Event{Store: f.store, Kind: events.ParcelReturned, AggregateID: p, OccurredAt: at}
	require.NoError(f.t, postgres.InTx(context.Background(), f.pool, postgres.StoreScope(f.store), func(tx *postgres.Tx) error {
		return billing.ReverseParcels(context.Background(), tx, []events.Event{ev})
	}))
}

// checkBalance asserts the ledger's balance for the store's agent entries:
// everything written = what payouts paid + what is still earned or pending,
// a reversed pair sums to zero, every paid entry is in exactly one payout,
// and each payout's total is the sum of its entries.
func (f *fixture) checkBalance() {
	f.t.Helper()
	ctx := context.Background()
	require.NoError(f.t, postgres.InSnapshot(ctx, f.pool, postgres.StoreScope(f.store), func(tx *postgres.Tx) error {
		var all, open, reversed, paid, payouts, payoutEntries int64
		var paidEntries, linked, badPayouts int
		if err := tx.QueryRow(ctx, `SELECT coalesce(sum(amount), 0)::bigint,
  coalesce(sum(amount) FILTER (WHERE status IN ('earned', 'pending')), 0)::bigint,
  coalesce(sum(amount) FILTER (WHERE status = 'reversed'), 0)::bigint,
  coalesce(sum(amount) FILTER (WHERE status = 'paid'), 0)::bigint,
  count(*) FILTER (WHERE status = 'paid')
FROM commission_entries WHERE store_id = $1 AND beneficiary = 'agent'`, f.store).Scan(&all, &open, &reversed, &paid, &paidEntries); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, `SELECT coalesce(sum(total), 0)::bigint FROM commission_payouts WHERE store_id = $1`, f.store).Scan(&payouts); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, `SELECT coalesce(sum(amount), 0)::bigint, count(*) FROM commission_payout_entries WHERE store_id = $1`,
			f.store).Scan(&payoutEntries, &linked); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM commission_payouts p WHERE p.store_id = $1 AND p.total <>
  (SELECT coalesce(sum(e.amount), 0) FROM commission_payout_entries pe JOIN commission_entries e ON e.store_id = pe.store_id AND e.id = pe.entry_id
   WHERE pe.store_id = p.store_id AND pe.payout_id = p.id)`, f.store).Scan(&badPayouts); err != nil {
			return err
		}
		require.Zero(f.t, reversed, "a reversed entry and its reversal cancel out")
		require.Equal(f.t, all, payouts+open, "ledger = paid out + still open")
		require.Equal(f.t, paid, payouts, "paid entries = payouts")
		require.Equal(f.t, payouts, payoutEntries)
		require.Equal(f.t, paidEntries, linked, "every paid entry is in exactly one payout")
		require.Zero(f.t, badPayouts, "a payout's total is the sum of its entries")
		return nil
	}))
}

// An agent is paid their earned entries; a parcel returned after its entry
// was paid is clawed back in the next period, never by rewriting the paid
// entry; payouts are idempotent by id.
func TestAgentPayouts(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	f.saveRules(f.store, agentRule(uuid.New(), commission.TriggerDelivered, 10_00))
	src := parcels(f.store, f.agent, 30, 3)
	_, err := (&billing.Runner{Pool: f.pool, Reserve: f.reserve, Source: src}).Run(ctx, f.store, march)
	require.NoError(t, err)
	delivered := 0
	var firstDelivered uuid.UUID
	for _, p := range src {
		if p.Status == parcel.StatusDelivered {
			delivered++
			if firstDelivered == uuid.Nil {
				firstDelivered = p.ID
			}
		}
	}
	april := march.AddDate(0, 1, 0)
	st := f.statement(f.agent, march, april)
	require.Equal(t, money.Amount(delivered)*10_00, st.Net)
	require.Equal(t, st.Net, st.Payable)
	require.Equal(t, "Sara", st.AgentName)
	f.checkBalance()

	payout := uuid.New()
	p, already, err := billing.MarkPaid(ctx, f.pool, f.store, f.agent, uuid.Nil, payout, april, april.Add(48*time.Hour), "VIR-03")
	require.NoError(t, err)
	require.False(t, already)
	require.Equal(t, st.Payable, p.Total)
	require.Equal(t, delivered, p.Entries)
	again, already, err := billing.MarkPaid(ctx, f.pool, f.store, f.agent, uuid.Nil, payout, april, april, "VIR-03")
	require.NoError(t, err)
	require.True(t, already)
	require.Equal(t, p.Total, again.Total)
	_, _, err = billing.MarkPaid(ctx, f.pool, f.store, uuid.New(), uuid.Nil, payout, april, april, "")
	require.ErrorIs(t, err, billing.ErrPayoutConflict)
	_, _, err = billing.MarkPaid(ctx, f.pool, f.store, f.agent, uuid.Nil, uuid.New(), april, april, "")
	require.ErrorIs(t, err, billing.ErrNothingToPay)
	st = f.statement(f.agent, march, april)
	require.Zero(t, st.Payable)
	for _, e := range st.Entries {
		require.Equal(t, billing.StatusPaid, e.Status)
		require.Equal(t, payout, e.Payout)
	}
	f.checkBalance()

	// A paid parcel comes back in April: its entry stays paid in March, the
	// reversal is an April clawback the next payout deducts.
	f.reverse(firstDelivered, april.AddDate(0, 0, 9))
	march2 := f.statement(f.agent, march, april)
	require.Equal(t, st.Net, march2.Net, "March is not rewritten")
	apr := f.statement(f.agent, april, april.AddDate(0, 1, 0))
	require.Equal(t, money.Amount(-10_00), apr.Reversed)
	require.Equal(t, money.Amount(-10_00), apr.Payable)
	_, _, err = billing.MarkPaid(ctx, f.pool, f.store, f.agent, uuid.Nil, uuid.New(), april.AddDate(0, 1, 0), april, "")
	require.ErrorIs(t, err, billing.ErrNothingToPay, "clawbacks above earnings carry over")
	f.checkBalance()

	// April's deliveries cover the clawback.
	more := parcels(f.store, f.agent, 5, 9)
	for i := range more {
		more[i].ConfirmedAt = more[i].ConfirmedAt.AddDate(0, 1, 0)
		more[i].DeliveredAt = more[i].DeliveredAt.AddDate(0, 1, 0)
		more[i].Status = parcel.StatusDelivered
	}
	_, err = (&billing.Runner{Pool: f.pool, Reserve: f.reserve, Source: more}).Run(ctx, f.store, april)
	require.NoError(t, err)
	p2, _, err := billing.MarkPaid(ctx, f.pool, f.store, f.agent, uuid.Nil, uuid.New(), april.AddDate(0, 1, 0), april.AddDate(0, 1, 1), "VIR-04")
	require.NoError(t, err)
	require.Equal(t, money.Amount(5*10_00-10_00), p2.Total)
	require.Equal(t, 6, p2.Entries, "five earns and the clawback")
	f.checkBalance()

	// The April statement printed: labels, the clawback, the payout.
	apr = f.statement(f.agent, april, april.AddDate(0, 1, 0))
	pdf, err := billing.RenderPayoutStatement(apr)
	require.NoError(t, err)
	got := pdfText(t, pdf)
	for _, l := range billing.PayoutLabels() {
		require.Contains(t, got, l.FR)
		ar := norm.NFKC.String(l.AR)
		if !strings.Contains(got, ar) {
			require.Contains(t, got, reversed(ar), "Arabic label %q", l.AR)
		}
	}
	require.Contains(t, got, "Annulation")
	require.Contains(t, got, money.Amount(-10_00).Format())
	require.Contains(t, got, "VIR-03", "the payout made in April")
	require.Contains(t, got, "Argan Beauty")
}

// Property: whatever the order of runs, returns and payouts, the ledger
// balances and no entry is paid twice.
func TestLedgerBalancesProperty(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	f.saveRules(f.store, agentRule(uuid.New(), commission.TriggerDelivered, 10_00),
		agentRule(uuid.New(), commission.TriggerConfirmed, 3_00))
	rng := rand.New(rand.NewPCG(42, 1))
	var all billing.SliceSource
	payouts := 0
	for step := range 24 {
		month := march.AddDate(0, step/8, 0)
		switch rng.IntN(4) {
		case 0, 1: // a run with new parcels
			batch := parcels(f.store, f.agent, 1+rng.IntN(12), uint64(step)+100)
			for i := range batch {
				d := month.Sub(march)
				batch[i].ConfirmedAt = batch[i].ConfirmedAt.Add(d)
				batch[i].DeliveredAt = batch[i].DeliveredAt.Add(d)
			}
			all = append(all, batch...)
			_, err := (&billing.Runner{Pool: f.pool, Reserve: f.reserve, Source: batch}).Run(ctx, f.store, month)
			require.NoError(t, err)
		case 2: // a delivered parcel comes back
			if len(all) > 0 {
				p := all[rng.IntN(len(all))]
				f.reverse(p.ID, month.AddDate(0, 0, 20+rng.IntN(5)))
			}
		case 3: // a payout
			_, _, err := billing.MarkPaid(ctx, f.pool, f.store, f.agent, uuid.Nil, uuid.New(), month.AddDate(0, 0, rng.IntN(40)), month, "")
			if err != nil {
				require.ErrorIs(t, err, billing.ErrNothingToPay)
			} else {
				payouts++
			}
		}
		f.checkBalance()
	}
	require.Positive(t, payouts, "the sequence pays at least once")
}

// A reversal written as "reversed" while its entry was being paid (the race
// between a return and a payout) is repaired by the next payout into the
// clawback it should be, and the ledger balances again.
func TestPayoutRepairsRacedReversal(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	f.saveRules(f.store, agentRule(uuid.New(), commission.TriggerDelivered, 10_00))
	src := deliveredParcels(f.store, f.agent, 6, 4)
	_, err := (&billing.Runner{Pool: f.pool, Reserve: f.reserve, Source: src}).Run(ctx, f.store, march)
	require.NoError(t, err)
	april := march.AddDate(0, 1, 0)
	_, _, err = billing.MarkPaid(ctx, f.pool, f.store, f.agent, uuid.Nil, uuid.New(), april, april, "VIR-1")
	require.NoError(t, err)
	// The race's outcome, written by hand: a reversal marked reversed of a paid entry.
	f.reverse(src[0].ID, april.AddDate(0, 0, 2))
	require.NoError(t, syncer.Write(ctx, f.pool, postgres.StoreScope(f.store), func(w *syncer.Writer) error {
		v, err := w.Reserve(f.store, 1)
		if err != nil {
			return err
		}
		_, err = w.Tx.Exec(ctx, `UPDATE commission_entries SET status = 'reversed', version = $2 WHERE store_id = $1 AND kind = 'reversal'`, f.store, v)
		return err
	}))
	more := parcels(f.store, f.agent, 2, 5)
	for i := range more {
		more[i].Status = parcel.StatusDelivered
		more[i].ConfirmedAt, more[i].DeliveredAt = more[i].ConfirmedAt.AddDate(0, 1, 0), more[i].DeliveredAt.AddDate(0, 1, 0)
	}
	_, err = (&billing.Runner{Pool: f.pool, Reserve: f.reserve, Source: more}).Run(ctx, f.store, april)
	require.NoError(t, err)
	p, _, err := billing.MarkPaid(ctx, f.pool, f.store, f.agent, uuid.Nil, uuid.New(), april.AddDate(0, 1, 0), april, "VIR-2")
	require.NoError(t, err)
	require.Equal(t, money.Amount(2*10_00-10_00), p.Total, "the raced reversal is clawed back")
	f.checkBalance()
}
