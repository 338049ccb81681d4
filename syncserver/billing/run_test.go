package billing_test

import (
	"context"
	"math"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/leadify/leadify/shared/commission"
	"github.com/leadify/leadify/shared/money"
	"github.com/leadify/leadify/shared/parcel"
	"github.com/leadify/leadify/syncserver/billing"
	"github.com/leadify/leadify/syncserver/events"
	"github.com/leadify/leadify/syncserver/postgres"
)

func TestRunIsIdempotentAndBalances(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.saveRules(f.store, agentRule(uuid.New(), commission.TriggerConfirmed, 5_00),
		agentRule(uuid.New(), commission.TriggerDelivered, 10_00), platformRule(uuid.New(), 300))
	src := parcels(f.store, f.agent, 2500, 1) // more than one chunk
	r := &billing.Runner{Pool: f.pool, Reserve: f.reserve, Source: src, Chunk: 2000}
	ctx := context.Background()

	res, err := r.Run(ctx, f.store, march)
	require.NoError(t, err)
	require.Equal(t, 2500, res.Parcels)
	require.Equal(t, res.Entries, res.Written)

	// What the ledger must hold, computed independently of the run.
	var wantAgent, wantPlatform money.Amount
	var delivered, failed int
	for _, p := range src {
		if p.Status != parcel.StatusDelivered {
			failed++
			continue
		}
		delivered++
		wantAgent += 15_00
		fee, err := p.COD.MulRate(300)
		require.NoError(t, err)
		wantPlatform += fee
	}
	got := f.ledger(f.store)
	require.Equal(t, wantAgent, got.Agent)
	require.Equal(t, wantPlatform, got.Platform)
	require.Equal(t, 3*delivered+failed, got.Earn, "failed parcels only earned their confirmation")
	require.Equal(t, failed, got.Reversal)
	require.Equal(t, 2*failed, got.ByStatus[billing.StatusReversed])

	again, err := r.Run(ctx, f.store, march)
	require.NoError(t, err)
	require.Zero(t, again.Written, "a re-run writes nothing")
	require.Equal(t, got, f.ledger(f.store))

	// The rest of the month arrives: only the new parcels are written.
	more := parcels(f.store, f.agent, 10, 2)
	for i := range more {
		more[i].DeliveredAt = march.AddDate(0, 0, 20)
	}
	r.Source = append(append(billing.SliceSource{}, src...), more...)
	third, err := r.Run(ctx, f.store, march)
	require.NoError(t, err)
	require.Positive(t, third.Written)
	require.Less(t, third.Written, 50)
}

// TestParcelReportedTwice: a source that reports a parcel delivered twice
// (a carrier's duplicate) pays it once.
func TestParcelReportedTwice(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.saveRules(f.store, platformRule(uuid.New(), 300))
	src := deliveredParcels(f.store, f.agent, 3, 8)
	twice := append(append(billing.SliceSource{}, src...), src[1])
	res, err := (&billing.Runner{Pool: f.pool, Reserve: f.reserve, Source: twice}).Run(context.Background(), f.store, march)
	require.NoError(t, err)
	require.Equal(t, 3, res.Written)
	require.Equal(t, platformFees(t, src, 300), f.ledger(f.store).Platform)
}

// platformFees is what a platform rule of bp pays for the parcels, each once.
func platformFees(t *testing.T, src billing.SliceSource, bp int64) money.Amount {
	t.Helper()
	var want money.Amount
	for _, p := range src {
		fee, err := p.COD.MulRate(bp)
		require.NoError(t, err)
		want += fee
	}
	return want
}

// TestParcelsReportedTwiceAcrossChunks: duplicates in different chunks,
// which the run's writers insert at once without the store's lock, meet on
// the ledger's unique key; the chunk that loses reads the ledger and writes
// the rest. Each parcel is paid once, and a re-run writes nothing.
func TestParcelsReportedTwiceAcrossChunks(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.saveRules(f.store, platformRule(uuid.New(), 300))
	src := deliveredParcels(f.store, f.agent, 300, 8)
	// Every tenth parcel again, 20 parcels later: in the next chunk of 20.
	var twice billing.SliceSource
	for i, p := range src {
		twice = append(twice, p)
		if i >= 20 && (i-20)%10 == 0 {
			twice = append(twice, src[i-20])
		}
	}
	r := &billing.Runner{Pool: f.pool, Reserve: f.reserve, Source: twice, Chunk: 20, Writers: 2}
	res, err := r.Run(context.Background(), f.store, march)
	require.NoError(t, err)
	require.Equal(t, 300, res.Written)
	want := platformFees(t, src, 300)
	require.Equal(t, want, f.ledger(f.store).Platform)
	again, err := r.Run(context.Background(), f.store, march)
	require.NoError(t, err)
	require.Zero(t, again.Written)
	require.Equal(t, want, f.ledger(f.store).Platform)
}

func TestReversalByEvent(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.saveRules(f.store, agentRule(uuid.New(), commission.TriggerConfirmed, 5_00), platformRule(uuid.New(), 250))
	src := deliveredParcels(f.store, f.agent, 20, 3)
	ctx := context.Background()
	_, err := (&billing.Runner{Pool: f.pool, Reserve: f.reserve, Source: src}).Run(ctx, f.store, march)
	require.NoError(t, err)
	before := f.ledger(f.store)

	ev := events.Event{Store: f.store, Kind: events.ParcelReturned, AggregateID: src[0].ID, OccurredAt: march.AddDate(0, 0, 3)}
	reverse := func() {
		require.NoError(t, postgres.InTx(ctx, f.pool, postgres.StoreScope(f.store), func(tx *postgres.Tx) error {
			return billing.ReverseParcels(ctx, tx, []events.Event{ev})
		}))
	}
	reverse()
	reverse() // a redelivered event changes nothing
	after := f.ledger(f.store)
	require.Equal(t, before.Earn, after.Earn)
	require.Equal(t, 2, after.Reversal)
	fee, err := src[0].COD.MulRate(250)
	require.NoError(t, err)
	require.Equal(t, before.Agent-5_00, after.Agent)
	require.Equal(t, before.Platform-fee, after.Platform)

	// Each reversal names its entry and cancels it to the centime.
	require.NoError(t, postgres.InTx(ctx, f.pool, postgres.StoreScope(f.store), func(tx *postgres.Tx) error {
		var n int
		err := tx.QueryRow(ctx, `SELECT count(*) FROM commission_entries r JOIN commission_entries e
  ON e.store_id = r.store_id AND e.id = r.reverses
WHERE r.kind = 'reversal' AND e.amount + r.amount = 0 AND e.base = r.base AND e.status = 'reversed'`).Scan(&n)
		require.Equal(t, 2, n)
		return err
	}))
}

func TestLedgerIsAppendOnly(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.saveRules(f.store, platformRule(uuid.New(), 250))
	ctx := context.Background()
	_, err := (&billing.Runner{Pool: f.pool, Reserve: f.reserve, Source: parcels(f.store, f.agent, 3, 4)}).Run(ctx, f.store, march)
	require.NoError(t, err)
	for _, stmt := range []string{
		`UPDATE commission_entries SET amount = amount + 1`,
		`DELETE FROM commission_entries`,
	} {
		err := postgres.InTx(ctx, f.pool, postgres.StoreScope(f.store), func(tx *postgres.Tx) error {
			_, err := tx.Exec(ctx, `SELECT set_config('app.sync_writer', 'on', true)`)
			require.NoError(t, err)
			_, err = tx.Exec(ctx, stmt)
			return err
		})
		require.Error(t, err, stmt)
	}
}

func TestSaveRuleRejects(t *testing.T) {
	t.Parallel()
	f := setup(t)
	id := uuid.New()
	f.saveRules(f.store, platformRule(id, 250))
	ctx := context.Background()
	save := func(r commission.Rule) error {
		return postgres.InTx(ctx, f.pool, postgres.StoreScope(f.store), func(tx *postgres.Tx) error {
			return billing.SaveRule(ctx, tx, f.store, uuid.Nil, r)
		})
	}
	changed := platformRule(id, 300)
	require.ErrorIs(t, save(changed), commission.ErrInvalid, "history is never rewritten")
	contradicting := platformRule(uuid.New(), 500)
	require.ErrorContains(t, save(contradicting), "contradicts")
	closed := platformRule(id, 250)
	closed.ValidUntil = march
	require.NoError(t, save(closed), "closing a rule is allowed")
	successor := platformRule(uuid.New(), 300)
	successor.ValidFrom = march
	require.NoError(t, save(successor))
	bad := platformRule(uuid.New(), -1)
	require.ErrorIs(t, save(bad), commission.ErrInvalid)
}

// TestRunAfterReturn: parcels paid for by a first run come back. The next
// run of the month reverses their confirmation entries (paid: clawbacks),
// in small chunks on two writers, and the return events their delivery
// entries, each reversal copying its entry to the centime; a further run
// changes nothing.
func TestRunAfterReturn(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.saveRules(f.store, agentRule(uuid.New(), commission.TriggerConfirmed, 10_00), platformRule(uuid.New(), 300))
	src := deliveredParcels(f.store, f.agent, 200, 5)
	ctx := context.Background()
	r := &billing.Runner{Pool: f.pool, Reserve: f.reserve, Source: src, Chunk: 37, Writers: 2}
	res, err := r.Run(ctx, f.store, march)
	require.NoError(t, err)
	require.Equal(t, 400, res.Written)
	before := f.ledger(f.store)
	april := march.AddDate(0, 1, 0)
	_, _, err = billing.MarkPaid(ctx, f.pool, f.store, f.agent, uuid.Nil, uuid.New(), april, april, "VIR-03")
	require.NoError(t, err)

	back := append(billing.SliceSource{}, src...)
	var fees money.Amount
	for i := 0; i < len(back); i += 10 {
		back[i].Status = parcel.StatusReturned
		fee, err := back[i].COD.MulRate(300)
		require.NoError(t, err)
		fees += fee
	}
	r.Source = back
	res, err = r.Run(ctx, f.store, march)
	require.NoError(t, err)
	require.Equal(t, 20, res.Written, "one clawback per returned parcel")
	for i := 0; i < len(back); i += 10 {
		f.reverse(back[i].ID, back[i].DeliveredAt)
	}
	after := f.ledger(f.store)
	require.Equal(t, before.Earn, after.Earn)
	require.Equal(t, 40, after.Reversal)
	require.Equal(t, before.Agent-20*10_00, after.Agent)
	require.Equal(t, before.Platform-fees, after.Platform)
	require.Equal(t, 40, after.ByStatus[billing.StatusReversed], "the platform's entries and their reversals")
	require.Equal(t, 200, after.ByStatus[billing.StatusPaid], "paid entries stay paid")
	f.checkBalance()
	require.NoError(t, postgres.InTx(ctx, f.pool, postgres.StoreScope(f.store), func(tx *postgres.Tx) error {
		var exact, clawbacks int
		err := tx.QueryRow(ctx, `SELECT count(*) FILTER (WHERE e.amount + r.amount = 0 AND e.base = r.base AND e.rule_id = r.rule_id
    AND e.beneficiary = r.beneficiary AND e.agent_id IS NOT DISTINCT FROM r.agent_id),
  count(*) FILTER (WHERE e.status = 'paid' AND r.status = 'earned')
FROM commission_entries r JOIN commission_entries e ON e.store_id = r.store_id AND e.id = r.reverses
WHERE r.kind = 'reversal'`).Scan(&exact, &clawbacks)
		require.Equal(t, 40, exact, "each reversal cancels its entry exactly")
		require.Equal(t, 20, clawbacks, "a paid entry's reversal is a clawback")
		return err
	}))

	res, err = r.Run(ctx, f.store, march)
	require.NoError(t, err)
	require.Zero(t, res.Written)
	require.Equal(t, after, f.ledger(f.store))
}

// TestRunOverflow: a rule whose amount does not fit fails the run with
// money.ErrOverflow naming the parcel, and writes nothing.
func TestRunOverflow(t *testing.T) {
	t.Parallel()
	f := setup(t)
	r := agentRule(uuid.New(), commission.TriggerDelivered, 0)
	r.Kind, r.TierBasis = commission.KindTiered, commission.BasisOrderAmount
	r.Tiers = []commission.Tier{{From: 0, RateBP: 100, Fixed: math.MaxInt64}}
	f.saveRules(f.store, r)
	src := deliveredParcels(f.store, f.agent, 5, 6)
	res, err := (&billing.Runner{Pool: f.pool, Reserve: f.reserve, Source: src}).Run(context.Background(), f.store, march)
	require.ErrorIs(t, err, money.ErrOverflow)
	require.ErrorContains(t, err, src[0].ID.String())
	require.Zero(t, res.Written)
	require.Zero(t, f.ledger(f.store).Earn)
}

// TestLedgerIsolation: a transaction scoped to one store neither sees nor
// writes another store's ledger (the policy of migration 00017).
func TestLedgerIsolation(t *testing.T) {
	t.Parallel()
	f := setup(t)
	other := f.newStore("Other")
	f.saveRules(other, platformRule(uuid.New(), 300))
	ctx := context.Background()
	_, err := (&billing.Runner{Pool: f.pool, Reserve: f.reserve, Source: parcels(other, f.agent, 10, 7)}).Run(ctx, other, march)
	require.NoError(t, err)
	require.Positive(t, f.ledger(other).Earn)
	require.NoError(t, postgres.InTx(ctx, f.pool, postgres.StoreScope(f.store), func(tx *postgres.Tx) error {
		var n int
		require.NoError(t, tx.QueryRow(ctx, `SELECT count(*) FROM commission_entries`).Scan(&n))
		require.Zero(t, n)
		return nil
	}))
	err = postgres.InTx(ctx, f.pool, postgres.StoreScope(f.store), func(tx *postgres.Tx) error {
		_, err := tx.Exec(ctx, `SELECT set_config('app.sync_writer', 'on', true)`)
		require.NoError(t, err)
		_, err = tx.Exec(ctx, `INSERT INTO commission_entries (store_id, id, version, rule_id, parcel_id, kind, beneficiary,
  status, base, amount, rule_name, calculation, occurred_at)
VALUES ($1, $2, 1, $2, $2, 'earn', 'platform', 'earned', 1, 1, 'x', 'x', now())`, other, uuid.New())
		return err
	})
	require.ErrorContains(t, err, "row-level security")
}
