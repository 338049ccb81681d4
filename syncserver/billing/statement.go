package billing

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/leadify/leadify/shared/money"
)

// A seller statement sums a seller's stores over a period: each store's
// opening balance, the invoices issued and the payments received in the
// period, and the closing balance. The balance is what the platform owes the
// seller: an invoice's net adds to it (a negative net — fees above the cash
// collected — takes from it) and a payment settles it in the invoice's
// direction.

// StatementInvoice is an invoice issued in the statement's period.
type StatementInvoice struct {
	ID          uuid.UUID
	Number      string
	PeriodStart time.Time
	PeriodEnd   time.Time
	IssuedAt    time.Time
	Status      string
	Net         money.Amount
	Paid        money.Amount
}

// StatementPayment is a payment received in the statement's period; Amount
// is signed like the balance.
type StatementPayment struct {
	Invoice   uuid.UUID
	Number    string
	PaidAt    time.Time
	Reference string
	Amount    money.Amount
}

// StoreStatement is one store's part of a seller statement.
type StoreStatement struct {
	Store    uuid.UUID
	Name     string
	Opening  money.Amount
	Invoices []StatementInvoice
	Payments []StatementPayment
	Invoiced money.Amount // Σ the period's invoices' nets
	Paid     money.Amount // Σ the period's payments
	Closing  money.Amount // Opening + Invoiced − Paid
}

// SellerStatement is a seller's statement over [From, To).
type SellerStatement struct {
	Seller                           uuid.UUID
	SellerName                       string
	From, To                         time.Time
	Stores                           []StoreStatement
	Opening, Invoiced, Paid, Closing money.Amount
}

// SellerStatementOf builds the statement of the seller's stores among
// stores (the ones the caller may see) for [from, to). Stores of another
// seller are left out. Drafts are not on statements: only issued invoices.
func SellerStatementOf(ctx context.Context, tx pgx.Tx, seller uuid.UUID, stores []uuid.UUID, from, to time.Time) (*SellerStatement, error) {
	from, to = from.UTC(), to.UTC()
	if !to.After(from) {
		return nil, fmt.Errorf("%w: [%s, %s)", ErrBadPeriod, from.Format(time.RFC3339), to.Format(time.RFC3339))
	}
	st := &SellerStatement{Seller: seller, From: from, To: to}
	if err := tx.QueryRow(ctx, `SELECT coalesce((SELECT name FROM sellers WHERE id = $1), '')`, seller).Scan(&st.SellerName); err != nil {
		return nil, fmt.Errorf("seller %v: %w", seller, err)
	}
	rows, err := tx.Query(ctx, `SELECT id, name FROM stores WHERE seller_id = $1 AND id = ANY($2) AND deleted_at IS NULL ORDER BY name, id`,
		seller, stores)
	if err != nil {
		return nil, fmt.Errorf("seller stores: %w", err)
	}
	st.Stores, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (StoreStatement, error) {
		var s StoreStatement
		return s, r.Scan(&s.Store, &s.Name)
	})
	if err != nil {
		return nil, fmt.Errorf("seller stores: %w", err)
	}
	var s sum
	for i := range st.Stores {
		ss := &st.Stores[i]
		if err := storeStatement(ctx, tx, ss, from, to, &s); err != nil {
			return nil, err
		}
		s.add(&st.Opening, ss.Opening)
		s.add(&st.Invoiced, ss.Invoiced)
		s.add(&st.Paid, ss.Paid)
		s.add(&st.Closing, ss.Closing)
	}
	if s.err != nil {
		return nil, s.err
	}
	return st, nil
}

// signed is a payment's effect on the balance: it settles the invoice's net.
func signed(net, amount money.Amount) money.Amount {
	if net < 0 {
		return -amount
	}
	return amount
}

func storeStatement(ctx context.Context, tx pgx.Tx, ss *StoreStatement, from, to time.Time, s *sum) error {
	// Opening: invoices issued before the period, less payments before it.
	var openNet, openPaid int64
	if err := tx.QueryRow(ctx, `SELECT coalesce(sum(i.total), 0)::bigint,
  coalesce((SELECT sum(CASE WHEN i2.total < 0 THEN -p.amount ELSE p.amount END) FROM invoice_payments p
    JOIN invoices i2 ON i2.store_id = p.store_id AND i2.id = p.invoice_id
    WHERE p.store_id = $1 AND p.paid_at < $2), 0)::bigint
FROM invoices i WHERE i.store_id = $1 AND i.status <> 'draft' AND i.issued_at < $2`, ss.Store, from).Scan(&openNet, &openPaid); err != nil {
		return fmt.Errorf("opening balance of %v: %w", ss.Store, err)
	}
	s.add(&ss.Opening, money.Amount(openNet))
	s.sub(&ss.Opening, money.Amount(openPaid))

	rows, err := tx.Query(ctx, `SELECT id, coalesce(number, 0), period_start, period_end, issued_at, status, total, paid FROM invoices
WHERE store_id = $1 AND status <> 'draft' AND issued_at >= $2 AND issued_at < $3 ORDER BY issued_at, number`, ss.Store, from, to)
	if err != nil {
		return fmt.Errorf("invoices of %v: %w", ss.Store, err)
	}
	ss.Invoices, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (StatementInvoice, error) {
		var inv StatementInvoice
		var number, net, paid int64
		err := r.Scan(&inv.ID, &number, &inv.PeriodStart, &inv.PeriodEnd, &inv.IssuedAt, &inv.Status, &net, &paid)
		inv.Number = (&Invoice{Number: number}).NumberText()
		inv.Net, inv.Paid = money.Amount(net), money.Amount(paid)
		return inv, err
	})
	if err != nil {
		return fmt.Errorf("invoices of %v: %w", ss.Store, err)
	}
	for _, inv := range ss.Invoices {
		s.add(&ss.Invoiced, inv.Net)
	}

	rows, err = tx.Query(ctx, `SELECT p.invoice_id, coalesce(i.number, 0), p.paid_at, p.reference, p.amount, i.total
FROM invoice_payments p JOIN invoices i ON i.store_id = p.store_id AND i.id = p.invoice_id
WHERE p.store_id = $1 AND p.paid_at >= $2 AND p.paid_at < $3 ORDER BY p.paid_at, p.id`, ss.Store, from, to)
	if err != nil {
		return fmt.Errorf("payments of %v: %w", ss.Store, err)
	}
	ss.Payments, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (StatementPayment, error) {
		var p StatementPayment
		var number, amount, net int64
		err := r.Scan(&p.Invoice, &number, &p.PaidAt, &p.Reference, &amount, &net)
		p.Number = (&Invoice{Number: number}).NumberText()
		p.Amount = signed(money.Amount(net), money.Amount(amount))
		return p, err
	})
	if err != nil {
		return fmt.Errorf("payments of %v: %w", ss.Store, err)
	}
	for _, p := range ss.Payments {
		s.add(&ss.Paid, p.Amount)
	}
	s.add(&ss.Closing, ss.Opening)
	s.add(&ss.Closing, ss.Invoiced)
	s.sub(&ss.Closing, ss.Paid)
	return s.err
}
