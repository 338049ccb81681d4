package sheetsync_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/leadify/leadify/syncserver/intake"
	"github.com/leadify/leadify/syncserver/intake/sheets"
	"github.com/leadify/leadify/syncserver/intake/sheets/sheetstest"
	"github.com/leadify/leadify/syncserver/intake/sheetsync"
	"github.com/leadify/leadify/syncserver/postgres"
	"github.com/leadify/leadify/syncserver/servertest"
)

// TestSyncResumesFromCheckpoint cuts the Sheets API off in the middle of a
// sync, at several points: the run stays resumable, the next attempt starts
// after the last committed row (re-fetching at most the batch that was cut),
// and in the end every row is imported exactly once.
func TestSyncResumesFromCheckpoint(t *testing.T) {
	t.Parallel()
	const rows = 3000
	env := servertest.Start(t)
	ctx := context.Background()
	// The read that fails: read 1 is the header, each later one a batch of
	// 500 rows; the importer commits every 2,000 rows, so from read 6 on a
	// chunk is committed before the cut.
	for _, cut := range []int{2, 6, 7} {
		t.Run(fmt.Sprintf("cut-at-read-%d", cut), func(t *testing.T) {
			fake := sheetstest.New()
			t.Cleanup(fake.Close)
			fake.SetSheet("s", "Commandes", bigSheet(t, rows))
			tn := env.NewTenant(env.Admin(), "resume"+uuid.NewString()[:6])
			src := uuid.New()
			env.InStore(func(tx *postgres.Tx) error {
				return intake.CreateSource(ctx, tx, intake.SourceRow{StoreID: tn.StoreID, ID: src, Kind: intake.KindSheet,
					Name: "s", SpreadsheetID: "s", Range: "Commandes"})
			}, tn.StoreID)
			svc := &sheetsync.Service{Pool: env.DB.App, Endpoint: fake.URL + "/", ChunkRows: 250, ChunkCount: 2,
				Backoff: sheets.Backoff{First: time.Millisecond, Max: time.Millisecond, Attempts: 2}}

			fake.FailFrom(cut)
			_, err := svc.Sync(ctx, tn.StoreID, src, nil)
			require.Error(t, err)
			var state string
			var checkpoint int
			env.InStore(func(tx *postgres.Tx) error {
				return tx.QueryRow(ctx, `SELECT state, checkpoint_row FROM intake_runs WHERE store_id = $1`, tn.StoreID).Scan(&state, &checkpoint)
			}, tn.StoreID)
			require.Equal(t, "running", state, "an interrupted sync stays resumable")
			if cut >= 6 {
				require.Greater(t, checkpoint, 2000, "the committed chunk is the checkpoint")
			}

			fake.FailFrom(0)
			before, ranges0 := fake.Reads()
			rep, err := svc.Sync(ctx, tn.StoreID, src, nil)
			require.NoError(t, err)
			after, ranges1 := fake.Reads()
			// The resumed run reads the header and the rest of the sheet from
			// the checkpoint: at most one batch (500 rows) is read again.
			fetchedRows := (ranges1 - ranges0 - 1) * 250
			require.LessOrEqual(t, fetchedRows, rows+1-max(checkpoint, 1)+500+500, "reads %d", after-before)

			var leads, distinct, runs int
			env.InStore(func(tx *postgres.Tx) error {
				if err := tx.QueryRow(ctx, `SELECT count(*), count(DISTINCT external_ref) FROM leads WHERE store_id = $1`, tn.StoreID).Scan(&leads, &distinct); err != nil {
					return err
				}
				return tx.QueryRow(ctx, `SELECT count(*) FROM intake_runs WHERE store_id = $1`, tn.StoreID).Scan(&runs)
			}, tn.StoreID)
			require.Equal(t, 1, runs, "the same run was resumed")
			require.Equal(t, leads, distinct, "no row imported twice")
			var total intake.Counts
			env.InStore(func(tx *postgres.Tx) error {
				return tx.QueryRow(ctx, `SELECT imported, duplicate, rejected, unchanged, rows_done FROM intake_runs WHERE store_id = $1`,
					tn.StoreID).Scan(&total.Imported, &total.Duplicate, &total.Rejected, &total.Unchanged, &total.Updated)
			}, tn.StoreID)
			require.Equal(t, rows, total.Updated, "rows_done counts every row once")
			require.Equal(t, leads, total.Imported+total.Duplicate)
			require.Zero(t, total.Unchanged)
			_ = rep
		})
	}
}
