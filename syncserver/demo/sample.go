package demo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"sort"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/leadify/leadify/syncserver/intake"
	"github.com/leadify/leadify/syncserver/intake/sample"
	"github.com/leadify/leadify/syncserver/intake/sheets/sheetstest"
	"github.com/leadify/leadify/syncserver/intake/sheetsync"
	"github.com/leadify/leadify/syncserver/postgres"
	"github.com/leadify/leadify/syncserver/server"
)

// SampleStore is the demo store the sample seller sheet is synced into.
const SampleStore = "Argan Beauty"

// The sample seller sheet as the demo's fake Google Sheets API serves it.
const (
	SampleSpreadsheet = "demo-argan-beauty-commandes"
	SampleSheet       = "Commandes"
	sampleConnection  = "Commandes (Google Sheet)"
)

// NewSheets starts the demo's fake Google Sheets API (sheetstest) on addr
// ("" for any free port) serving the sample seller sheet.
func NewSheets(addr string) (*sheetstest.Server, error) {
	var fake *sheetstest.Server
	if addr == "" {
		fake = sheetstest.New()
	} else {
		var err error
		if fake, err = sheetstest.Listen(addr); err != nil {
			return nil, err
		}
	}
	if err := fake.LoadCSV(SampleSpreadsheet, SampleSheet, bytes.NewReader(sample.CSV)); err != nil {
		fake.Close()
		return nil, err
	}
	return fake, nil
}

// RunSheets serves the demo's fake Google Sheets API on the endpoint's
// address until ctx ends.
func RunSheets(ctx context.Context, endpoint string, out io.Writer) error {
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" {
		return fmt.Errorf("sheets endpoint %q: want http://host:port/", endpoint)
	}
	fake, err := NewSheets(u.Host)
	if err != nil {
		return err
	}
	defer fake.Close()
	fmt.Fprintf(out, "fake Google Sheets API on %s/ serving spreadsheet %q, sheet %q (the sample seller sheet)\n", fake.URL,
		SampleSpreadsheet, SampleSheet)
	<-ctx.Done()
	return nil
}

// ImportSample connects the sample seller sheet to the demo's SampleStore as
// a Google Sheet connection (once) and syncs it through the Sheets API at the
// server's SheetsEndpoint — the demo's fake (without one, a fake started for
// the sync) — and the intake pipeline, returning the per-row report. Syncing
// it again changes nothing: every row comes back unchanged.
func ImportSample(ctx context.Context, s *server.Server) (*intake.Report, error) {
	var store, source uuid.UUID
	err := postgres.InTx(ctx, s.Pool, postgres.Scope{AllStores: true}, func(tx *postgres.Tx) error {
		if err := tx.QueryRow(ctx, `SELECT id FROM stores WHERE name = $1 AND deleted_at IS NULL ORDER BY created_at LIMIT 1`,
			SampleStore).Scan(&store); err != nil {
			return fmt.Errorf("find the demo store %q (run seed-demo first): %w", SampleStore, postgres.Translate(err))
		}
		err := tx.QueryRow(ctx, `SELECT id FROM intake_sources WHERE store_id = $1 AND kind = 'sheet' AND spreadsheet_id = $2
  AND deleted_at IS NULL ORDER BY created_at LIMIT 1`, store, SampleSpreadsheet).Scan(&source)
		if !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		source = uuid.New()
		if err := intake.CreateSource(ctx, tx, intake.SourceRow{StoreID: store, ID: source, Kind: intake.KindSheet,
			Name: sampleConnection, SpreadsheetID: SampleSpreadsheet, Range: SampleSheet}); err != nil {
			return err
		}
		// Its first sync is the one below: marked as syncing now, so that the
		// server's sweep of never-synced sheets does not run another at the
		// same time (which left this one's rows all "unchanged").
		_, err = tx.Exec(ctx, `UPDATE intake_sources SET last_sync_at = now() WHERE store_id = $1 AND id = $2`, store, source)
		return err
	})
	if err != nil {
		return nil, err
	}
	endpoint := s.Config().SheetsEndpoint
	if endpoint == "" {
		fake, err := NewSheets("")
		if err != nil {
			return nil, err
		}
		defer fake.Close()
		endpoint = fake.URL + "/"
	}
	svc := &sheetsync.Service{Pool: s.Pool, Keyring: s.Config().Secrets, Endpoint: endpoint}
	return svc.SyncKeepingRows(ctx, store, source)
}

// PrintReport writes an import's counts and its rejected rows grouped by
// reason, with a few examples of each.
func PrintReport(w io.Writer, rep *intake.Report) {
	c := rep.Counts
	fmt.Fprintf(w, "sample Google Sheet (%s) → %s: %d rows: %d imported, %d updated, %d unchanged, %d duplicates, %d rejected, %d empty\n",
		SampleSpreadsheet, SampleStore, c.Rows(), c.Imported, c.Updated, c.Unchanged, c.Duplicate, c.Rejected, c.Empty)
	byReason := map[intake.Reason][]intake.RowResult{}
	for _, r := range rep.Rows {
		if r.Outcome == intake.OutcomeRejected {
			byReason[r.Reason] = append(byReason[r.Reason], r)
		}
	}
	reasons := make([]string, 0, len(byReason))
	for r := range byReason {
		reasons = append(reasons, string(r))
	}
	sort.Strings(reasons)
	for _, r := range reasons {
		rows := byReason[intake.Reason(r)]
		fmt.Fprintf(w, "  rejected, %s: %d rows", r, len(rows))
		for i, row := range rows {
			if i == 3 {
				fmt.Fprint(w, " …")
				break
			}
			detail := row.Detail
			if detail == "" {
				detail = "(empty)"
			}
			fmt.Fprintf(w, "; row %d: %s", row.Num, detail)
		}
		fmt.Fprintln(w)
	}
}
