// Package sheetsync runs Google Sheet connections' syncs as River jobs: on
// demand and periodically per connection, one at a time per connection
// (unique jobs), resumable after a crash from the run's checkpoint (the last
// committed row), streaming rows from the Sheets API through the intake
// pipeline in bounded chunks.
package sheetsync

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/leadify/leadify/syncserver/intake"
	"github.com/leadify/leadify/syncserver/intake/sheets"
	"github.com/leadify/leadify/syncserver/postgres"
	"github.com/leadify/leadify/syncserver/secrets"
)

// SyncArgs asks for one sync of a sheet connection.
type SyncArgs struct {
	Store  uuid.UUID `json:"store"`
	Source uuid.UUID `json:"source"`
	// Requested is the second a seller asked for the sync (0 for the
	// periodic sweep): a request while a sync runs is a new job, which
	// waits for the running one (the sheet may have changed since it was
	// read); repeated requests within a second are one.
	Requested int64 `json:"requested,omitempty"`
	// Recovered is when (unix ns) a server found this connection's sync dead
	// (its server killed mid-run) and queued this one to resume it: a new job
	// each time, since the dead one stays "running" until River rescues it.
	Recovered int64 `json:"recovered,omitempty"`
	// Changed marks a sync the sheet's script asked for (it changed);
	// After is the running sync such a request waits behind.
	Changed bool  `json:"changed,omitempty"`
	After   int64 `json:"after,omitempty"`
}

// Kind implements river.JobArgs.
func (SyncArgs) Kind() string { return "intake_sheet_sync" }

// InsertOpts keeps at most one unfinished sync per connection and request
// second: a sweep while one is queued or running is the same job.
func (SyncArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{MaxAttempts: 20, UniqueOpts: river.UniqueOpts{ByArgs: true, ByState: []rivertype.JobState{
		rivertype.JobStateAvailable, rivertype.JobStatePending, rivertype.JobStateRetryable, rivertype.JobStateRunning,
		rivertype.JobStateScheduled,
	}}}
}

// DueArgs is the periodic sweep that queues syncs of connections whose
// interval has passed.
type DueArgs struct{}

// Kind implements river.JobArgs.
func (DueArgs) Kind() string { return "intake_sheet_sync_due" }

// Service syncs sheets.
type Service struct {
	Pool     *pgxpool.Pool
	Keyring  *secrets.Keyring
	Endpoint string // the Sheets API base URL; empty means Google's
	Backoff  sheets.Backoff
	Now      func() time.Time
	Log      *slog.Logger
	River    func() *river.Client[pgx.Tx]
	// PublicURL is the server's public base URL, which sheet scripts call.
	PublicURL string
	// ChunkRows and ChunkCount size the batchGet requests (0: the client's defaults).
	ChunkRows, ChunkCount int
}

// CredentialsAD is the associated data sealing a connection's credentials.
func CredentialsAD(store, source uuid.UUID) []byte {
	return []byte("intake_sources:" + store.String() + ":" + source.String())
}

// Register adds the workers.
func (s *Service) Register(w *river.Workers) error {
	if err := river.AddWorkerSafely(w, &syncWorker{s: s}); err != nil {
		return err
	}
	return river.AddWorkerSafely(w, &dueWorker{s: s})
}

// Periodic is the sweep that queues due syncs, every interval.
func Periodic(interval time.Duration) *river.PeriodicJob {
	return river.NewPeriodicJob(river.PeriodicInterval(interval),
		func() (river.JobArgs, *river.InsertOpts) { return DueArgs{}, nil }, &river.PeriodicJobOpts{RunOnStart: true})
}

// Enqueue queues a sync of the connection in tx (the same job if one is
// already queued or running).
func (s *Service) Enqueue(ctx context.Context, tx pgx.Tx, store, source uuid.UUID) error {
	_, err := s.River().InsertTx(ctx, tx, SyncArgs{Store: store, Source: source}, nil)
	if err != nil {
		return fmt.Errorf("queue sheet sync: %w", err)
	}
	return nil
}

// RequestSync queues a sync the seller asked for, in tx: it runs after any
// sync of the connection already running.
func (s *Service) RequestSync(ctx context.Context, tx pgx.Tx, store, source uuid.UUID) error {
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	_, err := s.River().InsertTx(ctx, tx, SyncArgs{Store: store, Source: source, Requested: now().Unix()}, nil)
	if err != nil {
		return fmt.Errorf("queue sheet sync: %w", err)
	}
	return nil
}

type dueWorker struct {
	river.WorkerDefaults[DueArgs]
	s *Service
}

func (w *dueWorker) Work(ctx context.Context, _ *river.Job[DueArgs]) error {
	err := postgres.InTx(ctx, w.s.Pool, postgres.Scope{AllStores: true}, func(tx *postgres.Tx) error {
		rows, err := tx.Query(ctx, `SELECT store_id, id FROM intake_sources
WHERE kind = 'sheet' AND deleted_at IS NULL
  AND (last_sync_at IS NULL OR last_sync_at + make_interval(mins => sync_minutes) <= now())
ORDER BY last_sync_at NULLS FIRST LIMIT 1000`)
		if err != nil {
			return err
		}
		var due []SyncArgs
		var a SyncArgs
		if _, err := pgx.ForEachRow(rows, []any{&a.Store, &a.Source}, func() error { due = append(due, a); return nil }); err != nil {
			return err
		}
		for _, a := range due {
			if err := w.s.Enqueue(ctx, tx.Tx, a.Store, a.Source); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	// Syncs whose server died (another instance's, here) resume too.
	_, err = w.s.Recover(ctx)
	return err
}

// lockKey is the advisory lock a sync of the connection holds while it runs.
func lockKey(source uuid.UUID) int64 { return int64(binary.BigEndian.Uint64(source[:8])) }

// Recover queues a sync of every connection whose sync died with its server
// (kill -9, a lost machine): its run or its River job is still "running" but
// no live session holds the connection's sync lock. The new job resumes the
// run from its checkpoint at once, instead of when River rescues the dead job
// (minutes later); the dead jobs are cancelled, so the rescue does not sync
// again. It runs when a server starts and with the periodic sweep; it returns
// how many syncs it queued.
func (s *Service) Recover(ctx context.Context) (int, error) {
	n := 0
	// A running job that was asked to cancel is dead: River's rescuer
	// cancels it.
	const running = `SELECT j.id FROM river_job j WHERE j.kind = $1 AND j.state = 'running' AND j.args->>'source' = $2
  AND NOT j.metadata ? 'cancel_attempted_at'`
	err := postgres.InTx(ctx, s.Pool, postgres.Scope{AllStores: true}, func(tx *postgres.Tx) error {
		rows, err := tx.Query(ctx, `SELECT src.store_id, src.id FROM intake_sources src
WHERE src.kind = 'sheet' AND src.deleted_at IS NULL
  AND (EXISTS (SELECT 1 FROM river_job j WHERE j.kind = $1 AND j.state = 'running' AND j.args->>'source' = src.id::text
      AND NOT j.metadata ? 'cancel_attempted_at')
    OR EXISTS (SELECT 1 FROM intake_runs r WHERE r.store_id = src.store_id AND r.source_id = src.id AND r.state = 'running'))
  AND NOT EXISTS (SELECT 1 FROM river_job j WHERE j.kind = $1 AND j.args->>'source' = src.id::text
    AND j.state IN ('available', 'pending', 'retryable', 'scheduled'))`, SyncArgs{}.Kind())
		if err != nil {
			return err
		}
		var found []SyncArgs
		var a SyncArgs
		if _, err := pgx.ForEachRow(rows, []any{&a.Store, &a.Source}, func() error { found = append(found, a); return nil }); err != nil {
			return err
		}
		for _, a := range found {
			// A live sync holds the lock for the whole run; the transaction's
			// own hold ends with it.
			var free bool
			if err := tx.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock($1)`, lockKey(a.Source)).Scan(&free); err != nil {
				return err
			}
			if !free {
				continue
			}
			q, err := tx.Query(ctx, running, SyncArgs{}.Kind(), a.Source.String())
			if err != nil {
				return err
			}
			dead, err := pgx.CollectRows(q, pgx.RowTo[int64])
			if err != nil {
				return err
			}
			for _, id := range dead {
				if _, err := s.River().JobCancelTx(ctx, tx.Tx, id); err != nil {
					return fmt.Errorf("cancel dead sheet sync %d: %w", id, err)
				}
			}
			a.Recovered = time.Now().UnixNano()
			if _, err := s.River().InsertTx(ctx, tx.Tx, a, nil); err != nil {
				return fmt.Errorf("queue sheet sync: %w", err)
			}
			if s.Log != nil {
				s.Log.Warn("resuming a sheet sync whose server died", "store", a.Store, "source", a.Source, "dead_jobs", len(dead))
			}
			n++
		}
		return nil
	})
	return n, err
}

type syncWorker struct {
	river.WorkerDefaults[SyncArgs]
	s *Service
}

// Timeout: a sheet of 800,000 rows takes minutes, never hours.
func (w *syncWorker) Timeout(*river.Job[SyncArgs]) time.Duration { return time.Hour }

func (w *syncWorker) Work(ctx context.Context, job *river.Job[SyncArgs]) error {
	// One sync at a time per connection, across server instances: a session
	// advisory lock on the connection, held for the sync.
	conn, err := w.s.Pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	key := lockKey(job.Args.Source)
	var locked bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, key).Scan(&locked); err != nil {
		return err
	}
	if !locked {
		return river.JobSnooze(2 * time.Second)
	}
	defer func() { _, _ = conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, key) }()
	_, err = w.s.Sync(ctx, job.Args.Store, job.Args.Source, nil)
	if errors.Is(err, errGone) {
		return nil // the connection was deleted: nothing to retry
	}
	return err
}

var errGone = errors.New("sheet connection deleted")

// connection is a sheet connection as a sync needs it.
type connection struct {
	intake.SourceRow
	sellerID  uuid.UUID
	sealed    []byte
	runID     uuid.UUID // an interrupted run to resume, or uuid.Nil
	resumeRow int
}

func (s *Service) load(ctx context.Context, store, source uuid.UUID) (*connection, error) {
	c := &connection{}
	err := postgres.InTx(ctx, s.Pool, postgres.StoreScope(store), func(tx *postgres.Tx) error {
		var spec []byte
		err := tx.QueryRow(ctx, `SELECT src.id, src.name, src.mapping, src.spreadsheet_id, src.sheet_range, src.header_row,
  src.credentials, st.seller_id
FROM intake_sources src JOIN stores st ON st.id = src.store_id
WHERE src.store_id = $1 AND src.id = $2 AND src.kind = 'sheet' AND src.deleted_at IS NULL`, store, source).Scan(
			&c.ID, &c.Name, &spec, &c.SpreadsheetID, &c.Range, &c.HeaderRow, &c.sealed, &c.sellerID)
		if errors.Is(err, pgx.ErrNoRows) {
			return errGone
		}
		if err != nil {
			return err
		}
		c.StoreID = store
		if err := json.Unmarshal(spec, &c.Spec); err != nil {
			return fmt.Errorf("mapping of %v: %w", source, err)
		}
		err = tx.QueryRow(ctx, `SELECT id, checkpoint_row FROM intake_runs WHERE store_id = $1 AND source_id = $2 AND state = 'running'
ORDER BY started_at DESC LIMIT 1`, store, source).Scan(&c.runID, &c.resumeRow)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		return err
	})
	return c, err
}

// Client returns a Sheets client for a connection's sealed credentials (nil:
// none, for fakes).
func (s *Service) Client(ctx context.Context, store, source uuid.UUID, sealed []byte) (*sheets.Client, error) {
	var creds sheets.Credentials
	if len(sealed) > 0 {
		plain, err := s.Keyring.Open(string(sealed), CredentialsAD(store, source))
		if err != nil {
			return nil, fmt.Errorf("open sheet credentials: %w", err)
		}
		var stored struct {
			ServiceAccountJSON json.RawMessage `json:"service_account_json,omitempty"`
			OAuthToken         string          `json:"oauth_token,omitempty"`
		}
		if err := json.Unmarshal(plain, &stored); err != nil {
			return nil, fmt.Errorf("read sheet credentials: %w", err)
		}
		creds.OAuthToken = stored.OAuthToken
		if string(stored.ServiceAccountJSON) != "null" {
			creds.ServiceAccountJSON = stored.ServiceAccountJSON
		}
	}
	return sheets.New(ctx, sheets.Config{Endpoint: s.Endpoint, Credentials: creds, Backoff: s.Backoff})
}

// Sync runs one sync of the connection, resuming an interrupted run where its
// checkpoint says, and returns its report. onChunk, when set, sees progress
// after each committed chunk.
func (s *Service) Sync(ctx context.Context, store, source uuid.UUID, onChunk func(intake.Progress)) (*intake.Report, error) {
	return s.sync(ctx, store, source, intake.RunOptions{OnChunk: onChunk})
}

// SyncKeepingRows runs one sync like Sync and returns every row's result in
// the report (small sheets only: the demo's).
func (s *Service) SyncKeepingRows(ctx context.Context, store, source uuid.UUID) (*intake.Report, error) {
	return s.sync(ctx, store, source, intake.RunOptions{KeepRows: true})
}

func (s *Service) sync(ctx context.Context, store, source uuid.UUID, opts intake.RunOptions) (*intake.Report, error) {
	c, err := s.load(ctx, store, source)
	if err != nil {
		return nil, err
	}
	rg, err := sheets.ParseRange(c.Range)
	if err != nil {
		return nil, err
	}
	rg.HeaderRow, rg.ChunkRows, rg.ChunkCount = c.HeaderRow, s.ChunkRows, s.ChunkCount
	client, err := s.Client(ctx, store, source, c.sealed)
	if err != nil {
		return nil, err
	}
	skip := 0
	if c.runID != uuid.Nil {
		skip = max(0, c.resumeRow-c.HeaderRow)
	}
	src, err := client.Open(ctx, c.SpreadsheetID, rg, skip)
	if err != nil {
		return nil, err
	}
	spec := c.Spec
	if len(spec.Bindings) == 0 {
		spec = intake.Suggest(src.Header())
	}
	mapping, err := intake.Resolve(spec, src.Header())
	if err != nil {
		return nil, fmt.Errorf("sheet %q: the saved mapping no longer fits the header: %w", c.Name, err)
	}
	im := &intake.Importer{Pool: s.Pool, Now: s.Now}
	rep, err := im.Run(ctx, intake.Target{StoreID: store, SellerID: c.sellerID, SourceID: source, Source: "sheet"}, mapping, src,
		intake.RunOptions{RunID: c.runID, ResumeAfter: c.resumeRow, OnChunk: opts.OnChunk, KeepRows: opts.KeepRows, Resumable: true})
	if err != nil {
		return rep, err
	}
	err = postgres.InTx(ctx, s.Pool, postgres.StoreScope(store), func(tx *postgres.Tx) error {
		_, err := tx.Exec(ctx, `UPDATE intake_sources SET last_sync_at = now() WHERE store_id = $1 AND id = $2`, store, source)
		return err
	})
	return rep, err
}
