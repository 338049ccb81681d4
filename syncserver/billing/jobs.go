package billing

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/leadify/leadify/syncserver/postgres"
	"github.com/leadify/leadify/syncserver/syncer"
)

// CommissionRunArgs runs the commissions of one store for the month
// containing Month.
type CommissionRunArgs struct {
	Store uuid.UUID `json:"store"`
	Month time.Time `json:"month"`
}

// Kind implements river.JobArgs.
func (CommissionRunArgs) Kind() string { return "billing.commission_run" }

// CommissionRunWorker works CommissionRunArgs.
type CommissionRunWorker struct {
	river.WorkerDefaults[CommissionRunArgs]
	Runner *Runner
}

// Work runs the month; re-running is harmless.
func (w *CommissionRunWorker) Work(ctx context.Context, job *river.Job[CommissionRunArgs]) error {
	_, err := w.Runner.Run(ctx, job.Args.Store, job.Args.Month)
	return err
}

// InvoiceBatchArgs generates, issues and emails every store's invoice for
// [From, To): the period-end batch.
type InvoiceBatchArgs struct {
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
}

// Kind implements river.JobArgs.
func (InvoiceBatchArgs) Kind() string { return "billing.invoice_batch" }

// PreviousMonth is the batch for the calendar month before now.
func PreviousMonth(now time.Time) InvoiceBatchArgs {
	from, _ := MonthOf(now)
	return InvoiceBatchArgs{From: from.AddDate(0, -1, 0), To: from}
}

// InvoiceBatchWorker fans a batch out into one job per store.
type InvoiceBatchWorker struct {
	river.WorkerDefaults[InvoiceBatchArgs]
	Service *Service
}

// Work enqueues an InvoiceStoreArgs job per live store, unique per store and
// period, so a repeated batch adds nothing.
func (w *InvoiceBatchWorker) Work(ctx context.Context, job *river.Job[InvoiceBatchArgs]) error {
	client := river.ClientFromContext[pgx.Tx](ctx)
	return postgres.InTx(ctx, w.Service.Pool, postgres.Scope{AllStores: true}, func(tx *postgres.Tx) error {
		rows, err := tx.Query(ctx, `SELECT id FROM stores WHERE deleted_at IS NULL ORDER BY id`)
		if err != nil {
			return fmt.Errorf("list stores: %w", err)
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
		if err != nil {
			return fmt.Errorf("list stores: %w", err)
		}
		jobs := make([]river.InsertManyParams, len(ids))
		for i, id := range ids {
			jobs[i] = river.InsertManyParams{Args: InvoiceStoreArgs{Store: id, From: job.Args.From, To: job.Args.To},
				InsertOpts: &river.InsertOpts{UniqueOpts: river.UniqueOpts{ByArgs: true}}}
		}
		if len(jobs) == 0 {
			return nil
		}
		_, err = client.InsertManyTx(ctx, tx.Tx, jobs)
		return err
	})
}

// InvoiceStoreArgs drafts, issues and emails one store's invoice.
type InvoiceStoreArgs struct {
	Store uuid.UUID `json:"store"`
	From  time.Time `json:"from"`
	To    time.Time `json:"to"`
}

// Kind implements river.JobArgs.
func (InvoiceStoreArgs) Kind() string { return "billing.invoice_store" }

// InvoiceStoreWorker works InvoiceStoreArgs.
type InvoiceStoreWorker struct {
	river.WorkerDefaults[InvoiceStoreArgs]
	Service *Service
}

// Work is idempotent: an issued invoice is not redrafted, an emailed one not
// re-sent.
func (w *InvoiceStoreWorker) Work(ctx context.Context, job *river.Job[InvoiceStoreArgs]) error {
	_, err := w.Service.Close(ctx, job.Args.Store, job.Args.From, job.Args.To)
	return err
}

// Close drafts, issues and emails the store's invoice for the period, doing
// only the steps not yet done, and returns the invoice id. Email is skipped
// when no relay is configured.
func (s *Service) Close(ctx context.Context, store uuid.UUID, from, to time.Time) (uuid.UUID, error) {
	var id uuid.UUID
	var status string
	var emailed bool
	find := func() error {
		return postgres.InTx(ctx, s.Pool, postgres.StoreScope(store), func(tx *postgres.Tx) error {
			err := tx.QueryRow(ctx, `SELECT id, status, emailed_at IS NOT NULL FROM invoices
WHERE store_id = $1 AND period_start = $2 AND period_end = $3`, store, from.UTC(), to.UTC()).Scan(&id, &status, &emailed)
			if errors.Is(err, pgx.ErrNoRows) {
				return nil
			}
			return err
		})
	}
	if err := find(); err != nil {
		return uuid.Nil, fmt.Errorf("find invoice: %w", err)
	}
	if status == "" || status == InvoiceDraft {
		inv, err := s.Draft(ctx, store, uuid.Nil, from, to)
		if err != nil {
			return uuid.Nil, err
		}
		if _, err := s.Issue(ctx, store, inv.ID, uuid.Nil); err != nil {
			return uuid.Nil, err
		}
		id = inv.ID
	}
	if emailed || s.Config.Mail.Addr == "" {
		return id, nil
	}
	return id, s.Email(ctx, store, id)
}

// Email sends the issued invoice's PDF to the seller's owner and records
// when. Fails with ErrNotIssued for a draft, ErrMailDisabled without a relay.
func (s *Service) Email(ctx context.Context, store, id uuid.UUID) error {
	var rec *Record
	var to string
	err := postgres.InSnapshot(ctx, s.Pool, postgres.StoreScope(store), func(tx *postgres.Tx) error {
		var err error
		if rec, err = loadRecord(ctx, tx, store, id, false); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `SELECT u.email FROM stores s JOIN sellers se ON se.id = s.seller_id
JOIN users u ON u.id = se.owner_user_id WHERE s.id = $1`, store).Scan(&to)
	})
	if err != nil {
		return fmt.Errorf("email invoice %v: %w", id, postgres.Translate(err))
	}
	if rec.Status == InvoiceDraft {
		return ErrNotIssued
	}
	inv := &rec.Invoice
	err = s.Config.Mail.Send(Mail{To: to,
		Subject: fmt.Sprintf("Facture %s — %s — %s", inv.NumberText(), inv.StoreName, inv.PeriodStart.Format("01/2006")),
		Text: fmt.Sprintf("Bonjour,\r\n\r\nVeuillez trouver ci-joint la facture %s de %s pour la période du %s au %s.\r\n"+
			"Net à reverser : %s.\r\n\r\nLe code QR de la facture permet d'en vérifier l'authenticité.\r\n\r\nLeadify\r\n",
			inv.NumberText(), inv.StoreName, frDate(inv.PeriodStart), frDate(inv.PeriodEnd.AddDate(0, 0, -1)), inv.Totals.Net.Format()),
		Attachments: []Attachment{{Name: inv.NumberText() + ".pdf", ContentType: "application/pdf", Data: rec.PDF}}})
	if err != nil {
		return err
	}
	return syncer.Write(ctx, s.Pool, postgres.StoreScope(store), func(w *syncer.Writer) error {
		v, err := w.Reserve(store, 1)
		if err != nil {
			return err
		}
		_, err = w.Tx.Exec(ctx, `UPDATE invoices SET emailed_at = now(), version = $3 WHERE store_id = $1 AND id = $2`, store, id, v)
		return err
	})
}

// CommissionSweepArgs enqueues a commission run for every store: the current
// month, and the previous one during the first days of a month (late
// deliveries).
type CommissionSweepArgs struct{}

// Kind implements river.JobArgs.
func (CommissionSweepArgs) Kind() string { return "billing.commission_sweep" }

// CommissionSweepWorker works CommissionSweepArgs.
type CommissionSweepWorker struct {
	river.WorkerDefaults[CommissionSweepArgs]
	Pool *pgxpool.Pool
	Now  func() time.Time
}

// Work enqueues the runs, unique per store and month.
func (w *CommissionSweepWorker) Work(ctx context.Context, _ *river.Job[CommissionSweepArgs]) error {
	now := time.Now()
	if w.Now != nil {
		now = w.Now()
	}
	months := []time.Time{now}
	if now.UTC().Day() <= 3 {
		months = append(months, now.AddDate(0, -1, 0))
	}
	client := river.ClientFromContext[pgx.Tx](ctx)
	return postgres.InTx(ctx, w.Pool, postgres.Scope{AllStores: true}, func(tx *postgres.Tx) error {
		rows, err := tx.Query(ctx, `SELECT id FROM stores WHERE deleted_at IS NULL ORDER BY id`)
		if err != nil {
			return fmt.Errorf("list stores: %w", err)
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
		if err != nil {
			return fmt.Errorf("list stores: %w", err)
		}
		var jobs []river.InsertManyParams
		for _, id := range ids {
			for _, m := range months {
				from, _ := MonthOf(m)
				jobs = append(jobs, river.InsertManyParams{Args: CommissionRunArgs{Store: id, Month: from},
					InsertOpts: &river.InsertOpts{UniqueOpts: river.UniqueOpts{ByArgs: true, ByPeriod: time.Hour}}})
			}
		}
		if len(jobs) == 0 {
			return nil
		}
		_, err = client.InsertManyTx(ctx, tx.Tx, jobs)
		return err
	})
}
