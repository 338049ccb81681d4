package billing

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/leadify/leadify/shared/money"
	"github.com/leadify/leadify/syncserver/audit"
	"github.com/leadify/leadify/syncserver/postgres"
	"github.com/leadify/leadify/syncserver/syncer"
)

// Errors of payouts.
var (
	// ErrNothingToPay: the agent has no earned entries before the cutoff, or
	// their clawbacks exceed their earnings (carried to the next payout).
	ErrNothingToPay = errors.New("nothing to pay")
	// ErrPayoutConflict: the payout id is taken by another agent's payout.
	ErrPayoutConflict = errors.New("payout id already used")
)

// Payout is a payment to an agent of their earned entries up to a cutoff.
type Payout struct {
	ID, Store, Agent uuid.UUID
	Cutoff           time.Time // entries that occurred before it were paid
	Total            money.Amount
	Entries          int
	Reference        string
	PaidAt           time.Time
}

// PayoutEntry is one of an agent's ledger entries on a statement.
type PayoutEntry struct {
	LedgerEntry
	Payout uuid.UUID // the payout that paid it, if any
}

// PayoutStatement is an agent's commissions in one store over [From, To):
// what they earned, what was reversed, and what is due.
type PayoutStatement struct {
	Store, Agent         uuid.UUID
	StoreName, AgentName string
	From, To             time.Time
	// Entries are the agent's entries that occurred in the period: earns and
	// reversals (a reversal of an entry paid in an earlier period lands here,
	// in the period of the return: history is never rewritten).
	Entries  []PayoutEntry
	Earned   money.Amount // the period's earn entries
	Reversed money.Amount // the period's reversals (≤ 0)
	Net      money.Amount // Earned + Reversed
	Pending  money.Amount // the period's entries waiting for delivery
	// Payable is every earned, unpaid entry that occurred before To — what
	// MarkPaid with cutoff To pays (clawbacks included).
	Payable money.Amount
	// Payouts are the agent's payouts made in the period.
	Payouts []Payout
}

const uuidNil = "'00000000-0000-0000-0000-000000000000'::uuid"

// AgentStatement builds an agent's payout statement for [from, to).
func AgentStatement(ctx context.Context, tx pgx.Tx, store, agent uuid.UUID, from, to time.Time) (*PayoutStatement, error) {
	from, to = from.UTC(), to.UTC()
	if !to.After(from) {
		return nil, fmt.Errorf("%w: [%s, %s)", ErrBadPeriod, from.Format(time.RFC3339), to.Format(time.RFC3339))
	}
	st := &PayoutStatement{Store: store, Agent: agent, From: from, To: to}
	if err := tx.QueryRow(ctx, `SELECT coalesce((SELECT full_name FROM users WHERE id = $1), ''),
  coalesce((SELECT name FROM stores WHERE id = $2), '')`, agent, store).Scan(&st.AgentName, &st.StoreName); err != nil {
		return nil, fmt.Errorf("agent %v: %w", agent, err)
	}
	rows, err := tx.Query(ctx, `SELECT e.id, e.rule_id, e.parcel_id, coalesce(e.agent_id, `+uuidNil+`), coalesce(e.reverses, `+uuidNil+`),
  e.kind, e.beneficiary, e.status, e.rule_name, e.calculation, e.base, e.amount, e.occurred_at, coalesce(pe.payout_id, `+uuidNil+`)
FROM commission_entries e
LEFT JOIN commission_payout_entries pe ON pe.store_id = e.store_id AND pe.entry_id = e.id
WHERE e.store_id = $1 AND e.agent_id = $2 AND e.beneficiary = 'agent' AND e.occurred_at >= $3 AND e.occurred_at < $4
ORDER BY e.occurred_at, e.id`, store, agent, from, to)
	if err != nil {
		return nil, fmt.Errorf("agent entries: %w", err)
	}
	st.Entries, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (PayoutEntry, error) {
		var e PayoutEntry
		var base, amount int64
		err := r.Scan(&e.ID, &e.RuleID, &e.ParcelID, &e.Agent, &e.Reverses, &e.Kind, &e.Beneficiary, &e.Status,
			&e.RuleName, &e.Calculation, &base, &amount, &e.OccurredAt, &e.Payout)
		e.Base, e.Amount = money.Amount(base), money.Amount(amount)
		return e, err
	})
	if err != nil {
		return nil, fmt.Errorf("agent entries: %w", err)
	}
	var s sum
	for _, e := range st.Entries {
		switch {
		case e.Kind == "reversal":
			s.add(&st.Reversed, e.Amount)
		default:
			s.add(&st.Earned, e.Amount)
		}
		if e.Status == StatusPending {
			s.add(&st.Pending, e.Amount)
		}
	}
	s.add(&st.Net, st.Earned)
	s.add(&st.Net, st.Reversed)
	var payable int64
	if err := tx.QueryRow(ctx, `SELECT coalesce(sum(amount), 0)::bigint FROM commission_entries
WHERE store_id = $1 AND agent_id = $2 AND beneficiary = 'agent' AND status = 'earned' AND occurred_at < $3`,
		store, agent, to).Scan(&payable); err != nil {
		return nil, fmt.Errorf("payable: %w", err)
	}
	st.Payable = money.Amount(payable)
	if st.Payouts, err = ListPayouts(ctx, tx, store, agent, from, to); err != nil {
		return nil, err
	}
	if s.err != nil {
		return nil, s.err
	}
	return st, nil
}

// ListPayouts returns the store's payouts (of one agent, or all when agent
// is uuid.Nil) made in [from, to) (zero times leave that end open), newest first.
func ListPayouts(ctx context.Context, tx pgx.Tx, store, agent uuid.UUID, from, to time.Time) ([]Payout, error) {
	var fromArg, toArg *time.Time
	if !from.IsZero() {
		fromArg = &from
	}
	if !to.IsZero() {
		toArg = &to
	}
	rows, err := tx.Query(ctx, `SELECT id, store_id, agent_id, cutoff, total, entries, reference, paid_at FROM commission_payouts
WHERE store_id = $1 AND ($2 = `+uuidNil+` OR agent_id = $2)
  AND ($3::timestamptz IS NULL OR paid_at >= $3) AND ($4::timestamptz IS NULL OR paid_at < $4)
ORDER BY paid_at DESC, id DESC`, store, agent, fromArg, toArg)
	if err != nil {
		return nil, fmt.Errorf("list payouts: %w", err)
	}
	out, err := pgx.CollectRows(rows, scanPayout)
	if err != nil {
		return nil, fmt.Errorf("list payouts: %w", err)
	}
	return out, nil
}

func scanPayout(r pgx.CollectableRow) (Payout, error) {
	var p Payout
	var total int64
	err := r.Scan(&p.ID, &p.Store, &p.Agent, &p.Cutoff, &total, &p.Entries, &p.Reference, &p.PaidAt)
	p.Total = money.Amount(total)
	return p, err
}

// MarkPaid pays an agent: every earned entry of theirs in the store that
// occurred before cutoff — earns and clawbacks (reversals of entries paid
// earlier) alike — moves to paid, each recorded once with the payout, and
// the payout records the total. The entries' amounts never change; a parcel
// returned after its entry was paid gets a reversal that the next payout
// deducts. Idempotent by payout id: a retry with the same id returns the
// payout (already = true). Fails with ErrNothingToPay when there is nothing
// earned or the clawbacks exceed the earnings, ErrPayoutConflict when the id
// is another agent's payout.
func MarkPaid(ctx context.Context, pool *pgxpool.Pool, store, agent, actor, id uuid.UUID, cutoff, paidAt time.Time, ref string) (p Payout, already bool, err error) {
	if id == uuid.Nil || agent == uuid.Nil {
		return p, false, fmt.Errorf("%w: payout and agent ids are required", ErrBadPeriod)
	}
	if cutoff.IsZero() {
		return p, false, fmt.Errorf("%w: a cutoff is required", ErrBadPeriod)
	}
	err = syncer.Write(ctx, pool, postgres.StoreScope(store), func(w *syncer.Writer) error {
		tx := w.Tx
		// The store's writers — commission runs, reversals — wait for us, so
		// no entry changes status under the payout.
		if err := w.Lock(store); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT id, store_id, agent_id, cutoff, total, entries, reference, paid_at FROM commission_payouts
WHERE store_id = $1 AND id = $2`, store, id)
		if err != nil {
			return fmt.Errorf("find payout: %w", err)
		}
		prev, err := pgx.CollectRows(rows, scanPayout)
		if err != nil {
			return fmt.Errorf("find payout: %w", err)
		}
		if len(prev) == 1 {
			if prev[0].Agent != agent {
				return fmt.Errorf("%w: %v", ErrPayoutConflict, id)
			}
			p, already = prev[0], true
			return nil
		}
		if err := repairClawbacks(ctx, w, store, agent); err != nil {
			return err
		}
		rows, err = tx.Query(ctx, `SELECT id, amount FROM commission_entries
WHERE store_id = $1 AND agent_id = $2 AND beneficiary = 'agent' AND status = 'earned' AND occurred_at < $3
ORDER BY occurred_at, id FOR UPDATE`, store, agent, cutoff)
		if err != nil {
			return fmt.Errorf("entries to pay: %w", err)
		}
		var ids []uuid.UUID
		var amounts []int64
		var total money.Amount
		for rows.Next() {
			var eid uuid.UUID
			var a int64
			if err := rows.Scan(&eid, &a); err != nil {
				rows.Close()
				return fmt.Errorf("entries to pay: %w", err)
			}
			ids, amounts = append(ids, eid), append(amounts, a)
			if total, err = total.Add(money.Amount(a)); err != nil {
				rows.Close()
				return err
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("entries to pay: %w", err)
		}
		if len(ids) == 0 {
			return fmt.Errorf("%w: no earned entries before %s", ErrNothingToPay, cutoff.Format(time.DateOnly))
		}
		if total <= 0 {
			return fmt.Errorf("%w: clawbacks exceed earnings by %s; they carry over to the next payout", ErrNothingToPay, -total)
		}
		p = Payout{ID: id, Store: store, Agent: agent, Cutoff: cutoff.UTC(), Total: total, Entries: len(ids), Reference: ref,
			PaidAt: paidAt.UTC()}
		if _, err := tx.Exec(ctx, `INSERT INTO commission_payouts (store_id, id, agent_id, cutoff, total, entries, reference, paid_at, created_by)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`, store, id, agent, p.Cutoff, int64(total), len(ids), ref, p.PaidAt, nullID(actor)); err != nil {
			return fmt.Errorf("record payout: %w", postgres.Translate(err))
		}
		if _, err := tx.Exec(ctx, `INSERT INTO commission_payout_entries (store_id, entry_id, payout_id, amount)
SELECT $1, u.id, $2, u.amount FROM unnest($3::uuid[], $4::bigint[]) AS u(id, amount)`, store, id, ids, amounts); err != nil {
			return fmt.Errorf("record payout entries: %w", postgres.Translate(err))
		}
		first, err := w.Reserve(store, len(ids))
		if err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `UPDATE commission_entries e SET status = 'paid', version = $3 + u.ord - 1, updated_at = now()
FROM unnest($2::uuid[]) WITH ORDINALITY AS u(id, ord)
WHERE e.store_id = $1 AND e.id = u.id AND e.status = 'earned'`, store, ids, first)
		if err != nil {
			return fmt.Errorf("mark entries paid: %w", err)
		}
		if int(tag.RowsAffected()) != len(ids) {
			return fmt.Errorf("mark entries paid: %d of %d entries changed under the payout", tag.RowsAffected(), len(ids))
		}
		return audit.Write(ctx, tx, audit.Entry{Actor: actor, Store: store, Action: "commission.payout", TargetType: "commission_payout",
			TargetID: id.String(), Summary: map[string]any{"agent": agent, "total": total, "entries": len(ids), "reference": ref,
				"cutoff": p.Cutoff.Format(time.RFC3339)}})
	})
	return p, already, err
}

// repairClawbacks makes earned (a clawback due) every reversal of the agent
// still marked reversed although the entry it reverses is paid: a reversal
// whose writer read the entry's status just before a payout committed. Only
// statuses change, as the ledger's rules say they should have been.
func repairClawbacks(ctx context.Context, w *syncer.Writer, store, agent uuid.UUID) error {
	rows, err := w.Tx.Query(ctx, `SELECT r.id FROM commission_entries r
JOIN commission_entries e ON e.store_id = r.store_id AND e.id = r.reverses
WHERE r.store_id = $1 AND r.agent_id = $2 AND r.kind = 'reversal' AND r.status = 'reversed' AND e.status = 'paid'
FOR UPDATE OF r`, store, agent)
	if err != nil {
		return fmt.Errorf("find clawbacks: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	if err != nil || len(ids) == 0 {
		return err
	}
	first, err := w.Reserve(store, len(ids))
	if err != nil {
		return err
	}
	if _, err := w.Tx.Exec(ctx, `UPDATE commission_entries e SET status = 'earned', version = $3 + u.ord - 1, updated_at = now()
FROM unnest($2::uuid[]) WITH ORDINALITY AS u(id, ord) WHERE e.store_id = $1 AND e.id = u.id`, store, ids, first); err != nil {
		return fmt.Errorf("repair clawbacks: %w", err)
	}
	return nil
}
