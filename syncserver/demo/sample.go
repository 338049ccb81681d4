package demo

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sort"

	"github.com/google/uuid"

	"github.com/leadify/leadify/syncserver/intake"
	"github.com/leadify/leadify/syncserver/intake/sample"
	"github.com/leadify/leadify/syncserver/postgres"
	"github.com/leadify/leadify/syncserver/server"
)

// SampleStore is the demo store the sample seller sheet is imported into.
const SampleStore = "Argan Beauty"

// ImportSample imports the sample seller sheet (intake/sample) into the demo's
// SampleStore through the intake pipeline, as a seller's file upload would,
// and returns the per-row report. Importing it again changes nothing: every
// row comes back unchanged.
func ImportSample(ctx context.Context, s *server.Server) (*intake.Report, error) {
	var store, seller, source uuid.UUID
	err := postgres.InTx(ctx, s.Pool, postgres.Scope{AllStores: true}, func(tx *postgres.Tx) error {
		if err := tx.QueryRow(ctx, `SELECT id, seller_id FROM stores WHERE name = $1 AND deleted_at IS NULL ORDER BY created_at LIMIT 1`,
			SampleStore).Scan(&store, &seller); err != nil {
			return fmt.Errorf("find the demo store %q (run seed-demo first): %w", SampleStore, postgres.Translate(err))
		}
		var err error
		source, err = intake.FileSource(ctx, tx, store)
		return err
	})
	if err != nil {
		return nil, err
	}
	src, err := intake.NewCSV(bytes.NewReader(sample.CSV))
	if err != nil {
		return nil, err
	}
	m, err := intake.Resolve(intake.Suggest(src.Header()), src.Header())
	if err != nil {
		return nil, err
	}
	im := &intake.Importer{Pool: s.Pool}
	return im.Run(ctx, intake.Target{StoreID: store, SellerID: seller, SourceID: source, Source: "file"}, m, src,
		intake.RunOptions{KeepRows: true})
}

// PrintReport writes an import's counts and its rejected rows grouped by
// reason, with a few examples of each.
func PrintReport(w io.Writer, rep *intake.Report) {
	c := rep.Counts
	fmt.Fprintf(w, "sample sheet → %s: %d rows: %d imported, %d updated, %d unchanged, %d duplicates, %d rejected, %d empty\n",
		SampleStore, c.Rows(), c.Imported, c.Updated, c.Unchanged, c.Duplicate, c.Rejected, c.Empty)
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
