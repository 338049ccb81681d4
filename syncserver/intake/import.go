package intake

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"maps"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/sync/errgroup"

	"github.com/leadify/leadify/shared/lead"
	"github.com/leadify/leadify/shared/money"
	"github.com/leadify/leadify/shared/mutation"
	"github.com/leadify/leadify/syncserver/postgres"
	"github.com/leadify/leadify/syncserver/syncer"
)

// Target names where a run writes: the store, its seller (customers and
// duplicate detection span all of the seller's stores), and the source whose
// row keys it upserts by.
type Target struct {
	StoreID  uuid.UUID
	SellerID uuid.UUID
	SourceID uuid.UUID
	// Source is the leads' source when a row names none ("sheet", "file").
	Source string
}

// Progress is a run's state after a committed chunk.
type Progress struct {
	RowsDone int // rows read and committed, header excluded
	Counts   Counts
}

// RunOptions tune a run.
type RunOptions struct {
	// RunID is the intake_runs row to count into; uuid.Nil creates one.
	RunID uuid.UUID
	// ResumeAfter skips rows numbered up to it: they were committed by an
	// interrupted run of RunID (its checkpoint_row).
	ResumeAfter int
	// KeepRows returns every row's result in the report (bounded uploads).
	KeepRows bool
	// OnChunk is called after each committed chunk.
	OnChunk func(Progress)
	// Resumable leaves a failed run running (with its error noted), so the
	// next attempt resumes it from its checkpoint instead of starting over.
	Resumable bool
	// Chunk bounds the rows per transaction; 0 or more than syncer.BulkChunk
	// means syncer.BulkChunk.
	Chunk int
}

// Importer writes parsed rows as leads.
type Importer struct {
	Pool *pgxpool.Pool
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

func (im *Importer) now() time.Time {
	if im.Now != nil {
		return im.Now().UTC()
	}
	return time.Now().UTC()
}

// Run streams src through the mapping into the target store, committing at
// most opts.Chunk rows per transaction, and returns the report. A bad row is
// reported and never stops the run; Run fails only when the source or the
// database does (the run is then marked failed, and the committed chunks
// stay: a later run with the same RunID and Skip resumes after them).
func (im *Importer) Run(ctx context.Context, t Target, m *Mapping, src Source, opts RunOptions) (*Report, error) {
	chunk := opts.Chunk
	if chunk <= 0 || chunk > syncer.BulkChunk {
		chunk = syncer.BulkChunk
	}
	stores, window, err := im.sellerStores(ctx, t)
	if err != nil {
		return nil, err
	}
	run := &runState{im: im, t: t, stores: stores, window: window, opts: opts,
		report: &Report{HasOrderID: m.HasOrderID()}, seen: map[uint64]int32{}}
	err = postgres.InTx(ctx, im.Pool, postgres.StoreScope(t.StoreID), func(tx *postgres.Tx) error {
		return tx.QueryRow(ctx, `SELECT NOT EXISTS (SELECT 1 FROM intake_rows WHERE store_id = $1 AND source_id = $2)`,
			t.StoreID, t.SourceID).Scan(&run.fresh)
	})
	if err != nil {
		return nil, fmt.Errorf("read the source's rows: %w", postgres.Translate(err))
	}
	if run.runID = opts.RunID; run.runID == uuid.Nil {
		run.runID = uuid.New()
		err := postgres.InTx(ctx, im.Pool, postgres.StoreScope(t.StoreID), func(tx *postgres.Tx) error {
			_, err := tx.Exec(ctx, `INSERT INTO intake_runs (store_id, id, source_id, state) VALUES ($1, $2, $3, 'running')`,
				t.StoreID, run.runID, t.SourceID)
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("start run: %w", postgres.Translate(err))
		}
	}
	run.report.RunID = run.runID.String()
	err = run.stream(ctx, m, src, chunk)
	state, msg := "done", ""
	switch {
	case err != nil && opts.Resumable:
		state, msg = "running", err.Error()
	case err != nil:
		state, msg = "failed", err.Error()
	}
	ferr := postgres.InTx(context.WithoutCancel(ctx), im.Pool, postgres.StoreScope(t.StoreID), func(tx *postgres.Tx) error {
		_, err := tx.Exec(ctx, `UPDATE intake_runs SET state = $3, error = $4,
  finished_at = CASE WHEN $3 = 'running' THEN NULL ELSE now() END, rows_total = rows_done
WHERE store_id = $1 AND id = $2`, t.StoreID, run.runID, state, msg)
		return err
	})
	if err != nil {
		return run.report, err
	}
	return run.report, ferr
}

func (im *Importer) sellerStores(ctx context.Context, t Target) ([]uuid.UUID, time.Duration, error) {
	var stores []uuid.UUID
	var hours int
	err := postgres.InTx(ctx, im.Pool, postgres.Scope{AllStores: true}, func(tx *postgres.Tx) error {
		if err := tx.QueryRow(ctx, `SELECT duplicate_window_hours FROM sellers WHERE id = $1`, t.SellerID).Scan(&hours); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT id FROM stores WHERE seller_id = $1 AND deleted_at IS NULL`, t.SellerID)
		if err != nil {
			return err
		}
		stores, err = pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
		return err
	})
	if err != nil {
		return nil, 0, fmt.Errorf("seller %v: %w", t.SellerID, postgres.Translate(err))
	}
	return stores, time.Duration(hours) * time.Hour, nil
}

type runState struct {
	im     *Importer
	t      Target
	stores []uuid.UUID
	window time.Duration
	opts   RunOptions
	runID  uuid.UUID
	report *Report
	// seen maps the hash of every row key read in this run to its row, so a
	// key repeated within the sheet is reported, not written twice (12 bytes
	// a row: 10 MB for the largest sheet Google allows).
	seen     map[uint64]int32
	seed     maphash.Seed
	rowsDone int
	// fresh: the source had no row keys when the run started (a first
	// import), so no row can be unchanged and none is looked up ahead of
	// its write (which still checks).
	fresh bool
	// scattered: a batch's keys were far apart in key order, so look-ups
	// ahead probe each key (lookUp).
	scattered atomic.Bool
}

// chunkOf is a chunk of rows ready to write: the rows to write, the results
// decided without the database, how many rows were read up to its end and
// the number of its last row (the checkpoint once it commits).
type chunkOf struct {
	rows    []Row
	pending []RowResult
	read    int
	lastNum int
}

// Batched is a Source that reads in batches (Sheets' batchGet): Buffered is
// how many rows Next returns before it must fetch again.
type Batched interface {
	Buffered() int
	// Peek returns the fetched rows Next has not returned yet.
	Peek() []Record
}

// stream reads, checks and parses chunks in one goroutine while this one
// writes the previous chunk: reading the sheet and parsing overlap with the
// database's work. At most two chunks wait between them, and a batched
// source's next batch is fetched only once every row read before it is
// committed: a run resumed after a crash fetches again at most the batch it
// was in.
func (r *runState) stream(ctx context.Context, m *Mapping, src Source, chunk int) error {
	r.seed = maphash.MakeSeed()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ready := make(chan chunkOf, 1)
	produced := make(chan error, 1)
	p := &producer{r: r, m: m, src: src, chunk: chunk, out: ready, wake: make(chan struct{}, 1)}
	go func() {
		defer close(ready)
		produced <- p.run(ctx)
	}()
	for c := range ready {
		err := r.flush(ctx, c)
		if err == nil {
			p.committed.Add(1)
			select {
			case p.wake <- struct{}{}:
			default:
			}
			continue
		}
		cancel()
		for range ready { // let the producer end
		}
		<-produced
		return err
	}
	return <-produced
}

// maxPending bounds the rows of a chunk whose results are decided without
// the database (an unchanged stretch of a re-sync: a small RowResult each).
const maxPending = 10 * syncer.BulkChunk

// producer reads a source and sends its rows in chunks.
type producer struct {
	r         *runState
	m         *Mapping
	src       Source
	chunk     int
	out       chan<- chunkOf
	chunks    int64        // chunks sent
	committed atomic.Int64 // chunks the writer committed
	wake      chan struct{}
}

// drain waits until every chunk sent is committed.
func (p *producer) drain(ctx context.Context) error {
	for p.committed.Load() < p.chunks {
		select {
		case <-p.wake:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// run reads the source and sends its rows in chunks of at most chunk rows.
func (p *producer) run(ctx context.Context) error {
	r, m, src, chunk := p.r, p.m, p.src, p.chunk
	batched, _ := src.(Batched)
	var recs []Record
	var recIDs []identity   // recs' identities, where worked out (else zero)
	var pending []RowResult // results decided without the database
	read, sent, lastNum := 0, 0, 0
	// A batched source's rows are looked up a batch at a time (a re-sync's
	// unchanged rows cost one query per batch, not per chunk).
	var known map[string]existing
	var ids []identity // the batch's records' identities, from pos on
	pos := 0
	waiting := map[string]bool{} // the order-id keys of recs
	send := func() error {
		c, err := r.process(ctx, m, recs, recIDs, pending, read, lastNum, known)
		if err != nil {
			return err
		}
		select {
		case p.out <- c:
		case <-ctx.Done():
			return ctx.Err()
		}
		p.chunks++
		sent = read
		recs, recIDs, pending = nil, nil, nil
		clear(waiting)
		return nil
	}
	for {
		fetching := batched != nil && batched.Buffered() == 0
		if fetching {
			// The next row needs another batch: first commit every row read.
			if len(recs)+len(pending) > 0 {
				if err := send(); err != nil {
					return err
				}
			}
			if err := p.drain(ctx); err != nil {
				return err
			}
		}
		rec, err := src.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if pe := (*csv.ParseError)(nil); errors.As(err, &pe) {
				// A malformed CSV line: report it and read on.
				read++
				if rec.Num > r.opts.ResumeAfter {
					pending = append(pending, RowResult{Num: rec.Num, Outcome: OutcomeRejected, Reason: ReasonTruncated, Detail: err.Error()})
				}
				continue
			}
			return fmt.Errorf("read row %d: %w", rec.Num, err)
		}
		read++
		lastNum = max(lastNum, rec.Num)
		if fetching {
			batch := append([]Record{rec}, batched.Peek()...)
			if known, err = r.knownByID(ctx, m, batch, &ids); err != nil {
				return err
			}
			if known == nil {
				known = map[string]existing{}
			}
			pos = 0
		}
		// The record's identity, if worked out with its batch's look-up.
		var id identity
		if pos < len(ids) && ids[pos].num == rec.Num {
			id = ids[pos]
		}
		pos++
		if rec.Num <= r.opts.ResumeAfter {
			// Committed before the interruption: only its key matters, so a
			// later row repeating it is still caught.
			key, ok := m.idKey(rec.Cells, rec.Ragged)
			if !ok {
				if row := m.Parse(rec.Num, rec.Cells, rec.Ragged); row.Accepted() {
					key, ok = row.Key, true
				}
			}
			if ok {
				r.seen[maphash.String(r.seed, key)] = int32(rec.Num)
			}
			continue
		}
		// An unchanged row costs no parsing and no write: it is reported at
		// once, and a stretch of them goes to the writer as one checkpoint
		// per batch rather than one per chunk. Keys must still be seen in the
		// sheet's order (the first row with a key keeps it): a row whose key
		// an earlier row waiting to be parsed has waits too. (A row keyed
		// only once parsed has a hash key, never an order id's.)
		if len(known) > 0 {
			if id.num != rec.Num {
				id = m.identify(rec)
			}
			key, ok := r.unchanged(rec, id, known, &pending, waiting)
			if ok {
				if len(pending) >= maxPending {
					if err := send(); err != nil {
						return err
					}
				}
				continue
			}
			if key != "" {
				waiting[key] = true
			}
		}
		recs, recIDs = append(recs, rec), append(recIDs, id)
		if len(recs) >= chunk || len(recs)+len(pending) >= maxPending {
			if err := send(); err != nil {
				return err
			}
		}
	}
	if len(recs)+len(pending) > 0 || sent < read {
		return send()
	}
	return nil
}

// process parses a chunk of records. Rows keyed by order id whose checksum
// matches the one recorded are unchanged: they are reported without being
// parsed. ids are the records' identities where worked out (zero elsewhere,
// or nil): a checksum is computed once per row.
func (r *runState) process(ctx context.Context, m *Mapping, recs []Record, ids []identity, pending []RowResult,
	read, lastNum int, known map[string]existing) (chunkOf, error) {
	if known == nil {
		// Not looked up with a batch: the identities are worked out
		// meanwhile.
		var err error
		if known, err = r.knownByID(ctx, m, recs, &ids); err != nil {
			return chunkOf{}, err
		}
	}
	var rows []Row
	seen := func(num int, key string) bool { return r.seenKey(num, key, &pending) }
	for i, rec := range recs {
		var id identity
		if i < len(ids) {
			id = ids[i]
		}
		// With nothing recorded to compare with (a first import), every
		// row is parsed.
		if len(known) > 0 {
			if id.num != rec.Num {
				id = m.identify(rec)
			}
			if _, ok := r.unchanged(rec, id, known, &pending, nil); ok {
				continue
			}
		}
		var sum *[16]byte
		if id.num == rec.Num && id.key != "" {
			sum = &id.sum
		}
		row := m.parse(rec.Num, rec.Cells, rec.Ragged, sum)
		switch {
		case row.Reject == ReasonEmpty:
			pending = append(pending, RowResult{Num: row.Num, Outcome: OutcomeEmpty})
		case !row.Accepted():
			pending = append(pending, RowResult{Num: row.Num, Key: row.Key, Outcome: OutcomeRejected, Reason: row.Reject, Detail: row.Detail})
		case !seen(row.Num, row.Key):
			rows = append(rows, row)
		}
	}
	return chunkOf{rows: rows, pending: pending, read: read, lastNum: lastNum}, nil
}

// seenKey records a row's key as read, or reports the row as repeating an
// earlier row's key (true).
func (r *runState) seenKey(num int, key string, pending *[]RowResult) bool {
	h := maphash.String(r.seed, key)
	if first, dup := r.seen[h]; dup {
		*pending = append(*pending, RowResult{Num: num, Key: key, Outcome: OutcomeRejected, Reason: ReasonDuplicateKey,
			Detail: fmt.Sprintf("row %d has the same key %s", first, key)})
		return true
	}
	r.seen[h] = int32(num)
	return false
}

// unchanged reports a row keyed by order id whose checksum matches the one
// recorded (unparsed), and returns true; other rows must be parsed. key is
// the row's order-id key ("" when it must be parsed to be keyed). id is the
// row's identity.
func (r *runState) unchanged(rec Record, id identity, known map[string]existing, pending *[]RowResult,
	waiting map[string]bool) (key string, ok bool) {
	key = id.key
	if key == "" {
		return "", false
	}
	e, hit := known[key]
	if !hit || !bytes.Equal(e.checksum, id.sum[:]) || waiting[key] {
		return key, false
	}
	if !r.seenKey(rec.Num, key, pending) {
		res := RowResult{Num: rec.Num, Key: key, Outcome: OutcomeUnchanged}
		if r.opts.KeepRows { // an unchanged row's lead is only reported, never recorded
			res.LeadID = e.lead.String()
		}
		*pending = append(*pending, res)
	}
	return key, true
}

// identity is a record's order-id key ("" when it must be parsed to be
// keyed) and checksum (with a key only), worked out while its batch's keys
// are looked up. A zero identity (num 0: records are numbered from 1) is
// not worked out.
type identity struct {
	num int
	key string
	sum [16]byte
}

// identify works out a record's identity.
func (m *Mapping) identify(rec Record) identity {
	key, sum, ok := m.Identify(rec.Cells, rec.Ragged)
	if !ok {
		return identity{num: rec.Num}
	}
	return identity{num: rec.Num, key: key, sum: sum}
}

// knownByID reads the recorded checksums of the records' order-id keys.
// With ids, it also works out the records' identities meanwhile (the
// checksums are most of a re-sync's Go work), in the records' order.
func (r *runState) knownByID(ctx context.Context, m *Mapping, recs []Record, ids *[]identity) (map[string]existing, error) {
	if !m.HasOrderID() || len(recs) == 0 || r.fresh {
		return nil, nil
	}
	keys := make([]string, 0, len(recs))
	var idOf []identity
	if ids != nil {
		idOf = make([]identity, len(recs))
	}
	for i, rec := range recs {
		key, ok := m.idKey(rec.Cells, rec.Ragged)
		if ok {
			keys = append(keys, key)
		}
		if idOf != nil {
			idOf[i] = identity{num: rec.Num, key: key}
		}
	}
	// A re-sync's look-ups are most of its Postgres work, and a batch's
	// rows wait for them: its keys are read in two halves at once, on two
	// connections (two backends, two cores), each in one round trip.
	half := (len(keys) + 1) / 2
	found := [2]map[string]existing{}
	var g errgroup.Group
	for i := range found {
		part := keys[min(len(keys), i*half):min(len(keys), (i+1)*half)]
		found[i] = make(map[string]existing, len(part))
		if len(part) == 0 {
			continue
		}
		g.Go(func() error { return r.lookUp(ctx, part, found[i]) })
	}
	for i := range idOf {
		if idOf[i].key != "" {
			idOf[i].sum = m.checksum(recs[i].Cells)
		}
	}
	if err := g.Wait(); err != nil {
		return nil, fmt.Errorf("read row keys: %w", err)
	}
	maps.Copy(found[0], found[1])
	if ids != nil {
		*ids = idOf
	}
	return found[0], nil
}

// execer runs a statement: a transaction, or a batch that queues it.
type execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// queue queues statements in a batch, sent in one round trip.
type queue struct{ b *pgx.Batch }

func (q queue) Exec(_ context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	q.b.Queue(sql, args...)
	return pgconn.CommandTag{}, nil
}

// existing is a row key already imported from the source.
type existing struct {
	lead     uuid.UUID
	checksum []byte
}

// candidate is a lead a new row may duplicate.
type candidate struct {
	id      uuid.UUID
	created time.Time
}

// flush commits one chunk: new rows become leads (or duplicates of an earlier
// lead of the same customer and product), changed rows update their lead
// while it is still open, unchanged rows cost nothing, and the run's counters
// and checkpoint advance in the same transaction.
func (r *runState) flush(ctx context.Context, c chunkOf) error {
	rows, pending, read := c.rows, c.pending, c.read
	now := r.im.now()
	t := r.t
	var results []RowResult
	write := func(fn func(w *syncer.Writer) error) error {
		return syncer.Write(ctx, r.im.Pool, postgres.StoreScope(r.stores...), fn)
	}
	if len(rows) == 0 {
		// Nothing to write but the report (an unchanged stretch of a
		// re-sync): no versioned write, no scope lock, one round trip and
		// no wait for the disk. Only a crash of Postgres itself can lose
		// such a commit, and then only with the ones after it (WAL order):
		// the run resumes from an earlier checkpoint and reads those
		// unchanged rows again.
		write = func(fn func(w *syncer.Writer) error) error {
			results = append(results[:0], pending...)
			return r.checkpointAlone(ctx, results, c.lastNum)
		}
	}
	err := write(func(w *syncer.Writer) error {
		results = append(results[:0], pending...)
		if err := w.Lock(t.StoreID); err != nil {
			return err
		}
		// The chunk's reads go in one round trip. The intake tables grow
		// during a run: plans cached while they were empty would scan them
		// whole on every chunk.
		known, cands := map[string]existing{}, map[string][]candidate{}
		b := &pgx.Batch{}
		b.Queue(`SET LOCAL plan_cache_mode = force_custom_plan`)
		r.queueKnown(b, rows, known)
		r.queueCandidates(b, rows, now, cands)
		if err := w.Tx.SendBatch(ctx, b).Close(); err != nil {
			return err
		}
		var fresh []mutation.Lead
		var changed []Row
		var changedIDs []uuid.UUID
		for i := range rows {
			row := &rows[i]
			if k, ok := known[row.Key]; ok {
				if bytes.Equal(k.checksum, row.Checksum[:]) {
					results = append(results, RowResult{Num: row.Num, Key: row.Key, Outcome: OutcomeUnchanged, LeadID: k.lead.String()})
					continue
				}
				changed = append(changed, *row)
				changedIDs = append(changedIDs, k.lead)
				continue
			}
			l := r.lead(row, now)
			res := RowResult{Num: row.Num, Key: row.Key, Outcome: OutcomeImported, LeadID: l.ID.String()}
			ck := candKey(row)
			if ck != "" {
				for _, c := range cands[ck] {
					if absDur(c.created.Sub(l.CreatedAt)) <= r.window {
						l.Status, l.DuplicateOf = lead.StatusDuplicate, c.id
						res.Outcome, res.DuplicateOf = OutcomeDuplicate, c.id.String()
						break
					}
				}
				if l.Status != lead.StatusDuplicate {
					cands[ck] = append(cands[ck], candidate{id: l.ID, created: l.CreatedAt})
				}
			}
			fresh = append(fresh, l)
			results = append(results, res)
		}
		updated, err := r.update(ctx, w, changed, changedIDs, now)
		if err != nil {
			return err
		}
		for i, row := range changed {
			o := OutcomeUnchanged
			if updated[changedIDs[i]] {
				o = OutcomeUpdated
			}
			results = append(results, RowResult{Num: row.Num, Key: row.Key, Outcome: o, LeadID: changedIDs[i].String()})
		}
		if len(fresh) > 0 {
			first, err := w.Reserve(t.StoreID, len(fresh))
			if err != nil {
				return err
			}
			for i := range fresh {
				fresh[i].Version = first + int64(i)
			}
			if err := w.InsertLeads(fresh); err != nil {
				return err
			}
		}
		// The bookkeeping goes in one round trip.
		q := queue{b: &pgx.Batch{}}
		if err := r.putKeys(ctx, q, rows, known, fresh, changed, changedIDs); err != nil {
			return err
		}
		if err := r.putCustomers(ctx, q, fresh, now); err != nil {
			return err
		}
		if err := r.checkpoint(ctx, q, results, c.lastNum); err != nil {
			return err
		}
		if err := w.Tx.SendBatch(ctx, q.b).Close(); err != nil {
			return fmt.Errorf("record row keys, customers and progress: %w", err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("write rows: %w", postgres.Translate(err))
	}
	r.rowsDone = read
	slices.SortFunc(results, func(a, b RowResult) int { return a.Num - b.Num })
	for _, res := range results {
		r.report.Counts.Add(res.Outcome)
	}
	if r.opts.KeepRows {
		r.report.Rows = append(r.report.Rows, results...)
	}
	if r.opts.OnChunk != nil {
		r.opts.OnChunk(Progress{RowsDone: read, Counts: r.report.Counts})
	}
	return nil
}

func absDur(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

// candKey identifies an order for duplicate detection: customer and product.
func candKey(row *Row) string {
	if row.Phone.E164 == "" {
		return ""
	}
	return row.Phone.E164 + "\x00" + strings.ToLower(strings.TrimSpace(row.Product))
}

// queueKnown queues the read of the rows' recorded keys into known.
//
// Each key is one probe of the primary key: the statement cannot fall back to
// reading every key of the source and filtering them (what the planner chose
// for "row_key = ANY($3)" whenever the source's statistics were older than the
// run, making each chunk's read grow with the rows already imported).
func (r *runState) queueKnown(b *pgx.Batch, rows []Row, known map[string]existing) {
	if len(rows) == 0 {
		return
	}
	keys := make([]string, len(rows))
	for i := range rows {
		keys[i] = rows[i].Key
	}
	scan := scanKnown(known)
	b.Queue(knownSQL, r.t.StoreID, r.t.SourceID, keys).Query(func(q pgx.Rows) error {
		if err := scan(q); err != nil {
			return fmt.Errorf("read row keys: %w", err)
		}
		return nil
	})
}

// lookUp reads the recorded lead and checksum of keys into known (with
// others, maybe). Keys close together in key order — a sheet sorted by order
// id, the usual case — are read with one scan of the range they span, a
// fraction of the cost of a probe each; when that range holds more than
// twice as many keys, the probes are used, for the rest of the run.
func (r *runState) lookUp(ctx context.Context, keys []string, known map[string]existing) error {
	scope := postgres.StoreScope(r.t.StoreID)
	if !r.scattered.Load() {
		// known starts empty and a source's keys are unique: what the
		// range read holds is what it scanned. One key more than twice
		// as many tells a range too wide from one read whole.
		most := 2 * len(keys)
		err := postgres.QueryInOneTrip(ctx, r.im.Pool, scope, knownRangeSQL, []any{r.t.StoreID, r.t.SourceID, keys, most + 1}, scanKnown(known))
		if err != nil || len(known) <= most {
			return err
		}
		r.scattered.Store(true)
		clear(known)
	}
	return postgres.QueryInOneTrip(ctx, r.im.Pool, scope, knownSQL, []any{r.t.StoreID, r.t.SourceID, keys}, scanKnown(known))
}

// knownRangeSQL reads the recorded keys of source $2 between the least and
// the greatest of keys $3, at most $4 of them.
const knownRangeSQL = `SELECT row_key, lead_id, checksum FROM intake_rows
WHERE store_id = $1 AND source_id = $2
  AND row_key BETWEEN (SELECT min(k) FROM unnest($3::text[]) AS u(k)) AND (SELECT max(k) FROM unnest($3::text[]) AS u(k))
ORDER BY row_key LIMIT $4`

// knownSQL reads the recorded lead and checksum of keys $3 of source $2.
const knownSQL = `SELECT k.row_key, k.lead_id, k.checksum FROM unnest($3::text[]) AS u(key)
CROSS JOIN LATERAL (SELECT row_key, lead_id, checksum FROM intake_rows
  WHERE store_id = $1 AND source_id = $2 AND row_key = u.key OFFSET 0) k`

// scanKnown reads knownSQL's rows into known.
func scanKnown(known map[string]existing) func(pgx.Rows) error {
	return func(q pgx.Rows) error {
		var k string
		var e existing
		_, err := pgx.ForEachRow(q, []any{&k, &e.lead, &e.checksum}, func() error {
			known[k] = existing{lead: e.lead, checksum: bytes.Clone(e.checksum)}
			return nil
		})
		return err
	}
}

// queueCandidates queues the read of the seller's open and closed leads
// (duplicates aside) that the chunk's rows may repeat, by customer and
// product, into cands. It is queued with the read of the rows' keys, so it
// looks up every row's phone: those of rows already imported are not used.
//
// Each store and phone is one probe of leads_phone_idx: the statement cannot
// fall back to reading the store's every lead in the date window and
// filtering them by phone (what the planner chose for "phone_e164 =
// ANY($2)" whenever the store's statistics were older than the run, which
// made each chunk's read grow with the leads already imported).
func (r *runState) queueCandidates(b *pgx.Batch, rows []Row, now time.Time, cands map[string][]candidate) {
	if len(rows) == 0 || r.window <= 0 {
		return
	}
	phones := make([]string, 0, len(rows))
	lo, hi := now, now
	for i := range rows {
		if rows[i].Phone.E164 == "" {
			continue
		}
		phones = append(phones, rows[i].Phone.E164)
		c := r.createdAt(&rows[i], now)
		lo, hi = minTime(lo, c), maxTime(hi, c)
	}
	slices.Sort(phones)
	if phones = slices.Compact(phones); len(phones) == 0 {
		return
	}
	b.Queue(`SELECT l.id, l.phone_e164, lower(btrim(coalesce(l.items->0->>'name', ''))), l.created_at
FROM unnest($1::uuid[]) AS s(id) CROSS JOIN unnest($2::text[]) AS p(phone)
CROSS JOIN LATERAL (SELECT id, phone_e164, items, created_at FROM leads
  WHERE store_id = s.id AND phone_e164 = p.phone AND created_at BETWEEN $3 AND $4
    AND deleted_at IS NULL AND status <> 'duplicate' OFFSET 0) l
ORDER BY l.created_at, l.id`, r.stores, phones, lo.Add(-r.window), hi.Add(r.window)).Query(func(q pgx.Rows) error {
		var c candidate
		var ph, product string
		_, err := pgx.ForEachRow(q, []any{&c.id, &ph, &product, &c.created}, func() error {
			k := ph + "\x00" + product
			cands[k] = append(cands[k], c)
			return nil
		})
		if err != nil {
			return fmt.Errorf("find duplicates: %w", err)
		}
		return nil
	})
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// createdAt is when the order was placed: the row's date, unless it is blank,
// unreadable or in the future (then the import time).
func (r *runState) createdAt(row *Row, now time.Time) time.Time {
	if row.Date.IsZero() || row.Date.After(now) {
		return now
	}
	return row.Date.UTC()
}

// lead builds the new lead a row becomes.
func (r *runState) lead(row *Row, now time.Time) mutation.Lead {
	l := mutation.Lead{ID: uuid.New(), StoreID: r.t.StoreID, CreatedAt: r.createdAt(row, now), UpdatedAt: now,
		Status: lead.StatusNew}
	r.fill(&l, row)
	return l
}

// fill copies a row's values onto a lead.
func (r *runState) fill(l *mutation.Lead, row *Row) {
	l.CustomerName = row.Name
	l.PhoneRaw, l.PhoneE164 = row.Phone.Raw, row.Phone.E164
	l.CityID, l.CityRaw = row.City.ID, row.CityRaw
	l.Address = row.Address
	l.COD = row.Price
	l.Source = row.Source
	if l.Source == "" {
		l.Source = r.t.Source
	}
	l.ExternalRef = row.OrderID
	l.Items = nil
	if row.Product != "" || row.SKU != "" {
		l.Items = []mutation.Item{{SKU: row.SKU, Name: row.Product, Qty: row.Qty, UnitPrice: money.Amount(int64(row.Price) / int64(row.Qty))}}
	}
	l.Custom = nil
	if len(row.Custom) > 0 || row.Note != "" || row.DateRaw != "" {
		l.Custom = make(map[string]string, len(row.Custom)+2)
		for k, v := range row.Custom {
			l.Custom[k] = v
		}
		if row.Note != "" {
			l.Custom["note"] = row.Note
		}
		if d := strings.TrimSpace(row.DateRaw); d != "" {
			l.Custom["order_date"] = d
		}
	}
}

// openLeadsSQL reads which of the leads $2 of store $1 are still open: one
// primary-key search per lead.
// By key, whatever the planner believes of the store: see
// pgtest.RequireKeyed, TestOpenLeadsSearchesByID.
const openLeadsSQL = `SELECT l.id FROM (SELECT DISTINCT id FROM unnest($2::uuid[]) AS u(id)) u,
LATERAL (SELECT id FROM leads WHERE store_id = (SELECT $1::uuid) AND id = u.id AND deleted_at IS NULL
  AND status IN ('new', 'no_answer', 'callback', 'unreachable') OFFSET 0) l`

// update rewrites the leads of changed rows that are still open (not yet
// confirmed, cancelled or marked); the others keep what an agent made of them.
func (r *runState) update(ctx context.Context, w *syncer.Writer, changed []Row, ids []uuid.UUID, now time.Time) (map[uuid.UUID]bool, error) {
	done := map[uuid.UUID]bool{}
	if len(changed) == 0 {
		return done, nil
	}
	q, err := w.Tx.Query(ctx, openLeadsSQL, r.t.StoreID, ids)
	if err != nil {
		return nil, err
	}
	open, err := pgx.CollectRows(q, pgx.RowTo[uuid.UUID])
	if err != nil {
		return nil, err
	}
	if len(open) == 0 {
		return done, nil
	}
	isOpen := map[uuid.UUID]bool{}
	for _, id := range open {
		isOpen[id] = true
	}
	first, err := w.Reserve(r.t.StoreID, len(open))
	if err != nil {
		return nil, err
	}
	b := &pgx.Batch{}
	v := first
	for i := range changed {
		if !isOpen[ids[i]] {
			continue
		}
		var l mutation.Lead
		r.fill(&l, &changed[i])
		items := l.Items
		if items == nil {
			items = []mutation.Item{}
		}
		custom := l.Custom
		if custom == nil {
			custom = map[string]string{}
		}
		b.Queue(`UPDATE leads SET version = $3, updated_at = $4, customer_name = $5, phone_raw = $6, phone_e164 = $7,
  city_id = $8, city_raw = $9, address = $10, items = $11, cod = $12, source = $13, external_ref = $14, custom = $15
WHERE store_id = $1 AND id = $2`, r.t.StoreID, ids[i], v, now, l.CustomerName, l.PhoneRaw, l.PhoneE164, l.CityID,
			l.CityRaw, l.Address, items, int64(l.COD), l.Source, l.ExternalRef, custom)
		done[ids[i]] = true
		v++
	}
	return done, w.Tx.SendBatch(ctx, b).Close()
}

// putKeys records the row keys and checksums of new and changed rows. New
// keys are plain inserts: the chunk read them absent with the source's
// writers serialised (one sync per connection, the store's scope locked).
func (r *runState) putKeys(ctx context.Context, tx execer, rows []Row, known map[string]existing,
	fresh []mutation.Lead, changed []Row, changedIDs []uuid.UUID) error {
	put := func(sql string, keys []string, leads [][16]byte, sums [][]byte) error {
		if len(keys) == 0 {
			return nil
		}
		if _, err := tx.Exec(ctx, sql, r.t.StoreID, r.t.SourceID, keys, leads, sums); err != nil {
			return fmt.Errorf("record row keys: %w", err)
		}
		return nil
	}
	const insert = `INSERT INTO intake_rows (store_id, source_id, row_key, lead_id, checksum)
SELECT $1, $2, k, l, c FROM unnest($3::text[], $4::uuid[], $5::bytea[]) AS u(k, l, c)`
	var keys []string
	var leads [][16]byte // binary on the wire (uuid.UUID goes through text)
	var sums [][]byte
	f := 0
	for i := range rows {
		if _, ok := known[rows[i].Key]; ok {
			continue
		}
		keys, leads, sums = append(keys, rows[i].Key), append(leads, [16]byte(fresh[f].ID)), append(sums, rows[i].Checksum[:])
		f++
	}
	if err := put(insert, keys, leads, sums); err != nil {
		return err
	}
	keys, leads, sums = nil, nil, nil // the batch holds the first ones until it is sent
	for i := range changed {
		keys, leads, sums = append(keys, changed[i].Key), append(leads, [16]byte(changedIDs[i])), append(sums, changed[i].Checksum[:])
	}
	return put(insert+`
ON CONFLICT (store_id, source_id, row_key) DO UPDATE SET lead_id = excluded.lead_id, checksum = excluded.checksum`, keys, leads, sums)
}

// putCustomers counts new leads into their customers (one per seller and
// phone).
func (r *runState) putCustomers(ctx context.Context, tx execer, fresh []mutation.Lead, now time.Time) error {
	type agg struct {
		name  string
		n     int32
		first time.Time
	}
	by := map[string]*agg{}
	for _, l := range fresh {
		if l.PhoneE164 == "" {
			continue
		}
		a := by[l.PhoneE164]
		if a == nil {
			a = &agg{first: l.CreatedAt}
			by[l.PhoneE164] = a
		}
		a.n++
		a.first = minTime(a.first, l.CreatedAt)
		if l.CustomerName != "" {
			a.name = l.CustomerName
		}
	}
	if len(by) == 0 {
		return nil
	}
	phones := make([]string, 0, len(by))
	names := make([]string, 0, len(by))
	counts := make([]int32, 0, len(by))
	firsts := make([]time.Time, 0, len(by))
	for p, a := range by {
		phones, names, counts, firsts = append(phones, p), append(names, a.name), append(counts, a.n), append(firsts, a.first)
	}
	_, err := tx.Exec(ctx, `INSERT INTO customers (seller_id, phone_e164, name, first_seen, last_seen, orders)
SELECT $1, p, n, f, $2, c FROM unnest($3::text[], $4::text[], $5::int[], $6::timestamptz[]) AS u(p, n, c, f)
ON CONFLICT (seller_id, phone_e164) DO UPDATE SET orders = customers.orders + excluded.orders,
  last_seen = excluded.last_seen, first_seen = least(customers.first_seen, excluded.first_seen),
  name = CASE WHEN excluded.name <> '' THEN excluded.name ELSE customers.name END`,
		r.t.SellerID, now, phones, names, counts, firsts)
	if err != nil {
		return fmt.Errorf("record customers: %w", err)
	}
	return nil
}

// checkpoint records the chunk's notable rows and advances the run.
func (r *runState) checkpoint(ctx context.Context, tx execer, results []RowResult, lastNum int) error {
	if _, err := tx.Exec(ctx, checkpointSQL, checkpointArgs(r, results, lastNum)...); err != nil {
		return fmt.Errorf("checkpoint run: %w", err)
	}
	return nil
}

// checkpointAlone is checkpoint in a transaction of its own that costs one
// round trip and commits without waiting for the disk (synchronous_commit
// off, set by the statement itself).
func (r *runState) checkpointAlone(ctx context.Context, results []RowResult, lastNum int) error {
	err := postgres.QueryInOneTrip(ctx, r.im.Pool, postgres.StoreScope(r.t.StoreID), checkpointAsyncSQL, checkpointArgs(r, results, lastNum),
		func(rows pgx.Rows) error { rows.Close(); return rows.Err() })
	if err != nil {
		return fmt.Errorf("checkpoint run: %w", err)
	}
	return nil
}

// checkpointArgs are the arguments of checkpointSQL.
func checkpointArgs(r *runState, results []RowResult, lastNum int) []any {
	rr := runRowsOf(results)
	c := rr.counts
	return []any{r.t.StoreID, r.runID, c.Rows(), c.Imported, c.Updated, c.Unchanged, c.Duplicate, c.Rejected, c.Empty, lastNum,
		rr.nums, rr.keys, rr.outcomes, rr.reasons, rr.details, rr.leads}
}

// A checkpoint is one statement: the notable rows ($11–$16) recorded, the
// run's counts ($3–$9) and checkpoint row ($10) advanced.
const (
	checkpointRows = `notable AS (INSERT INTO intake_run_rows (store_id, run_id, row_num, row_key, outcome, reason, detail, lead_id)
  SELECT $1, $2, n, k, o, r, d, l FROM unnest($11::int[], $12::text[], $13::text[], $14::text[], $15::text[], $16::uuid[]) AS u(n, k, o, r, d, l)
  ON CONFLICT (store_id, run_id, row_num) DO NOTHING)
UPDATE intake_runs SET rows_done = rows_done + $3, checkpoint_row = $10, imported = imported + $4, updated = updated + $5,
  unchanged = unchanged + $6, duplicate = duplicate + $7, rejected = rejected + $8, empty = empty + $9`
	checkpointSQL = `WITH ` + checkpointRows + `
WHERE store_id = $1 AND id = $2`
	checkpointAsyncSQL = `WITH async AS (SELECT set_config('synchronous_commit', 'off', true)), ` + checkpointRows + `
FROM async WHERE store_id = $1 AND id = $2`
)

// runRows are a chunk's results as a checkpoint records them: the counts,
// and the rows worth a look (neither imported, unchanged nor empty).
type runRows struct {
	counts                           Counts
	nums                             []int32
	keys, outcomes, reasons, details []string
	leads                            []*uuid.UUID
}

func runRowsOf(results []RowResult) runRows {
	var rr runRows
	for _, res := range results {
		rr.counts.Add(res.Outcome)
		if res.Outcome == OutcomeImported || res.Outcome == OutcomeUnchanged || res.Outcome == OutcomeEmpty {
			continue
		}
		rr.nums, rr.keys, rr.outcomes = append(rr.nums, int32(res.Num)), append(rr.keys, res.Key), append(rr.outcomes, string(res.Outcome))
		rr.reasons, rr.details = append(rr.reasons, string(res.Reason)), append(rr.details, res.Detail)
		var id *uuid.UUID
		if u, err := uuid.Parse(res.LeadID); err == nil {
			id = &u
		}
		rr.leads = append(rr.leads, id)
	}
	return rr
}
