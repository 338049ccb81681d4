package intake

import (
	"context"
	"crypto/sha256"
	"fmt"
	"hash/maphash"
	"slices"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/leadify/leadify/syncserver/postgres"
	"github.com/leadify/leadify/syncserver/postgres/pgtest"
)

// statements records which look-up statements a pool sent, in order:
// "range" (knownRangeSQL) and "probe" (knownSQL). It sees what Postgres was
// asked, so it tells which way lookUp chose.
type statements struct {
	mu  sync.Mutex
	ran []string
}

func (s *statements) note(sql string) {
	name := ""
	switch sql {
	case knownRangeSQL:
		name = "range"
	case knownSQL:
		name = "probe"
	default:
		return
	}
	s.mu.Lock()
	s.ran = append(s.ran, name)
	s.mu.Unlock()
}

// take returns the statements recorded since the last call.
func (s *statements) take() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	ran := s.ran
	s.ran = nil
	return ran
}

func (s *statements) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	s.note(d.SQL)
	return ctx
}

func (s *statements) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

func (s *statements) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	return ctx
}

func (s *statements) TraceBatchQuery(_ context.Context, _ *pgx.Conn, d pgx.TraceBatchQueryData) {
	s.note(d.SQL)
}

func (s *statements) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData) {}

// lookUpFixture is a source with recordedKeys row keys recorded, "id:K0000"
// to "id:K0199" (key order is number order), on a pool whose look-up
// statements are recorded.
type lookUpFixture struct {
	pool     *pgxpool.Pool
	ran      *statements
	target   Target
	recorded map[string]existing
}

const recordedKeys = 200

func orderKey(i int) string { return fmt.Sprintf("id:K%04d", i) }

func newLookUpFixture(t *testing.T) *lookUpFixture {
	t.Helper()
	ctx := context.Background()
	db := pgtest.New(t)
	cfg, err := pgxpool.ParseConfig(db.AppURL)
	require.NoError(t, err)
	f := &lookUpFixture{ran: &statements{}, recorded: map[string]existing{},
		target: Target{StoreID: uuid.New(), SourceID: uuid.New()}}
	cfg.ConnConfig.Tracer = f.ran
	f.pool, err = pgxpool.NewWithConfig(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(f.pool.Close)

	var keys []string
	var leads []uuid.UUID
	var sums [][]byte
	for i := range recordedKeys {
		k := orderKey(i)
		sum := sha256.Sum256([]byte(k))
		f.recorded[k] = existing{lead: uuid.New(), checksum: sum[:16]}
		keys, leads, sums = append(keys, k), append(leads, f.recorded[k].lead), append(sums, sum[:16])
	}
	// The same keys, and keys between them, recorded for another source of
	// the store and for another store: no look-up may count or return them.
	var otherKeys []string
	for _, k := range keys {
		otherKeys = append(otherKeys, k, k+"x")
	}
	otherSource, otherStore := uuid.New(), uuid.New()
	err = postgres.InTx(ctx, db.App, postgres.Scope{AllStores: true}, func(tx *postgres.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO intake_rows (store_id, source_id, row_key, lead_id, checksum)
SELECT $1, $2, k, l, s FROM unnest($3::text[], $4::uuid[], $5::bytea[]) AS u(k, l, s)`,
			f.target.StoreID, f.target.SourceID, keys, leads, sums); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO intake_rows (store_id, source_id, row_key, lead_id, checksum)
SELECT st, so, k, gen_random_uuid(), '\x00' FROM unnest($1::text[]) AS u(k), (VALUES ($2::uuid, $3::uuid), ($4::uuid, $5::uuid)) AS o(st, so)`,
			otherKeys, f.target.StoreID, otherSource, otherStore, f.target.SourceID)
		return err
	})
	require.NoError(t, err)
	return f
}

// run is a run of the fixture's source; scattered says an earlier batch of
// the run found its keys far apart.
func (f *lookUpFixture) run(scattered bool) *runState {
	r := &runState{im: &Importer{Pool: f.pool}, t: f.target}
	r.scattered.Store(scattered)
	return r
}

// requireKnown checks what a look-up of keys read: every recorded key asked
// for with what is recorded for it, and nothing but recorded keys of the
// source between the least and the greatest key asked for.
func (f *lookUpFixture) requireKnown(t *testing.T, keys []string, known map[string]existing) {
	t.Helper()
	for _, k := range keys {
		if e, ok := f.recorded[k]; ok {
			require.Contains(t, known, k)
			require.Equal(t, e, known[k], k)
		}
	}
	lo, hi := slices.Min(keys), slices.Max(keys)
	for k, e := range known {
		require.Equal(t, f.recorded[k], e, "%s is not recorded so", k)
		require.True(t, lo <= k && k <= hi, "%s is outside the keys' range %s to %s", k, lo, hi)
	}
}

// onlyAsked is known restricted to keys.
func onlyAsked(keys []string, known map[string]existing) map[string]existing {
	out := map[string]existing{}
	for _, k := range keys {
		if e, ok := known[k]; ok {
			out[k] = e
		}
	}
	return out
}

func keysFrom(nums ...int) []string {
	keys := make([]string, len(nums))
	for i, n := range nums {
		keys[i] = orderKey(n)
	}
	return keys
}

func keysBetween(lo, hi int) []string {
	var keys []string
	for i := lo; i <= hi; i++ {
		keys = append(keys, orderKey(i))
	}
	return keys
}

// lookUp reads a batch's keys with one scan of the range they span unless
// that range holds more than twice as many keys as the batch: then (and for
// the rest of the run) with a probe per key. Either way it reads the same
// recorded keys.
func TestLookUpChoosesRangeOrProbes(t *testing.T) {
	t.Parallel()
	f := newLookUpFixture(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name      string
		keys      []string
		scattered bool     // an earlier batch of the run was scattered
		want      []string // the statements sent
	}{
		{name: "one key", keys: keysFrom(100), want: []string{"range"}},
		{name: "contiguous", keys: keysBetween(10, 29), want: []string{"range"}},
		{name: "contiguous, sheet unsorted", keys: keysFrom(19, 10, 15, 11, 18, 12, 17, 13, 16, 14), want: []string{"range"}},
		{name: "every other key", keys: keysFrom(40, 42, 44, 46, 48, 50), want: []string{"range"}},
		{name: "new orders after the recorded ones", keys: []string{"id:L0001", "id:L0002", "id:L0003"}, want: []string{"range"}},
		{name: "new orders between recorded ones", keys: []string{orderKey(60), orderKey(60) + "a", orderKey(61), orderKey(61) + "a"},
			want: []string{"range"}},
		// Two keys: a range of four recorded keys is read, one of five is not.
		{name: "range holds twice as many keys", keys: keysFrom(0, 3), want: []string{"range"}},
		{name: "range holds one more than twice as many", keys: keysFrom(0, 4), want: []string{"range", "probe"}},
		{name: "range holds twice as many, new keys asked", keys: []string{orderKey(70), orderKey(70) + "a", orderKey(75)},
			want: []string{"range"}},
		{name: "range holds one more than twice as many, new keys asked",
			keys: []string{orderKey(70), orderKey(70) + "a", orderKey(76)}, want: []string{"range", "probe"}},
		{name: "far apart", keys: keysFrom(0, 199), want: []string{"range", "probe"}},
		{name: "far apart, sheet unsorted", keys: keysFrom(150, 3, 90, 91, 4), want: []string{"range", "probe"}},
		{name: "far apart, mostly new", keys: []string{"id:A", orderKey(5), "id:Z"}, want: []string{"range", "probe"}},
		{name: "contiguous after a scattered batch", keys: keysBetween(10, 29), scattered: true, want: []string{"probe"}},
		{name: "one key after a scattered batch", keys: keysFrom(100), scattered: true, want: []string{"probe"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := f.run(tc.scattered)
			known := map[string]existing{}
			require.NoError(t, r.lookUp(ctx, tc.keys, known))
			require.Equal(t, tc.want, f.ran.take(), "statements sent")
			probed := tc.want[len(tc.want)-1] == "probe"
			require.Equal(t, probed, r.scattered.Load(), "the run's keys are scattered from now on")
			f.requireKnown(t, tc.keys, known)
			if probed {
				require.Equal(t, onlyAsked(tc.keys, known), known, "probes read only the keys asked for")
			}

			if !probed {
				// Probes read the same recorded keys.
				other := map[string]existing{}
				require.NoError(t, f.run(true).lookUp(ctx, tc.keys, other))
				require.Equal(t, []string{"probe"}, f.ran.take())
				require.Equal(t, onlyAsked(tc.keys, known), other)
			}
		})
	}
}

// A batch's keys are looked up in two halves, each choosing its own way;
// the identities worked out meanwhile are what Identify says.
func TestKnownByIDHalves(t *testing.T) {
	t.Parallel()
	f := newLookUpFixture(t)
	ctx := context.Background()
	header := []string{"N° Commande", "Téléphone", "Produit"}
	m, err := Resolve(Suggest(header), header)
	require.NoError(t, err)
	rec := func(num int, order string) Record {
		return Record{Num: num, Cells: []string{order, fmt.Sprintf("06%08d", 12345600+num), "Robe"}}
	}

	// Each half is contiguous, though the batch spans every recorded key.
	var recs []Record
	for i := range 10 {
		recs = append(recs, rec(i+2, fmt.Sprintf("K%04d", i)))
	}
	for i := range 10 {
		recs = append(recs, rec(i+12, fmt.Sprintf("K%04d", 190+i)))
	}
	recs = append(recs[:5], append([]Record{rec(99, " "), {Num: 100, Cells: []string{"K0005"}, Ragged: true}}, recs[5:]...)...)
	r := f.run(false)
	var ids []identity
	known, err := r.knownByID(ctx, m, recs, &ids)
	require.NoError(t, err)
	require.Equal(t, []string{"range", "range"}, f.ran.take())
	require.False(t, r.scattered.Load())
	var keys []string
	require.Len(t, ids, len(recs))
	for i, rc := range recs {
		key, sum, ok := m.Identify(rc.Cells, rc.Ragged)
		if !ok {
			require.Equal(t, identity{num: rc.Num}, ids[i], "row %d has no order-id key", rc.Num)
			continue
		}
		require.Equal(t, identity{num: rc.Num, key: key, sum: sum}, ids[i])
		keys = append(keys, key)
	}
	require.Len(t, keys, 20)
	want := map[string]existing{}
	for _, k := range keys {
		want[k] = f.recorded[k]
	}
	require.Equal(t, want, known)

	// A half whose range holds too many keys is probed, and so is every
	// later batch of the run.
	recs = []Record{rec(2, "K0000"), rec(3, "K0100"), rec(4, "K0199"), rec(5, "K0050")}
	known, err = r.knownByID(ctx, m, recs, nil)
	require.NoError(t, err)
	ran := f.ran.take()
	require.Contains(t, ran, "probe")
	require.True(t, r.scattered.Load())
	require.Equal(t, map[string]existing{orderKey(0): f.recorded[orderKey(0)], orderKey(100): f.recorded[orderKey(100)],
		orderKey(199): f.recorded[orderKey(199)], orderKey(50): f.recorded[orderKey(50)]}, known)
	_, err = r.knownByID(ctx, m, []Record{rec(6, "K0010"), rec(7, "K0011"), rec(8, "K0012"), rec(9, "K0013")}, nil)
	require.NoError(t, err)
	require.Equal(t, []string{"probe", "probe"}, f.ran.take(), "a probe for each half")

	// A first import looks nothing up.
	r = f.run(false)
	r.fresh = true
	known, err = r.knownByID(ctx, m, recs, &ids)
	require.NoError(t, err)
	require.Nil(t, known)
	require.Empty(t, f.ran.take())
}

// A chunk's rows are parsed with the checksums worked out for them (with
// their batch's look-up, or to find them unchanged): each row's checksum is
// computed once, and its rows are what Parse makes of them.
func TestProcessUsesWorkedOutChecksums(t *testing.T) {
	t.Parallel()
	header := []string{"N° Commande", "Téléphone", "Ville", "Prix", "Produit"}
	m, err := Resolve(Suggest(header), header)
	require.NoError(t, err)
	recs := []Record{
		{Num: 2, Cells: []string{"A1", "0612345678", "Rabat", "100", "Robe"}}, // unchanged
		{Num: 3, Cells: []string{"A2", "0612345679", "Fes", "200", "Sac"}},    // changed
		{Num: 4, Cells: []string{"A3", "0612345670", "Fes", "50", "Gaine"}},   // new
		{Num: 5, Cells: []string{"", "0612345671", "Rabat", "80", "Robe"}},    // keyed by hash
		{Num: 6, Cells: []string{"A4", "0612345672"}, Ragged: true},           // cut short
		{Num: 7, Cells: []string{"A1", "0612345678", "Rabat", "100", "Robe"}}, // A1 again
	}
	sumOf := func(i int) []byte {
		s := m.checksum(recs[i].Cells)
		return s[:]
	}
	known := map[string]existing{
		"id:A1": {lead: uuid.New(), checksum: sumOf(0)},
		"id:A2": {lead: uuid.New(), checksum: sumOf(0)},
	}
	parsed := func(nums ...int) []Row {
		var rows []Row
		for _, rc := range recs {
			if slices.Contains(nums, rc.Num) {
				rows = append(rows, m.Parse(rc.Num, rc.Cells, rc.Ragged))
			}
		}
		return rows
	}
	newRun := func() *runState {
		return &runState{seen: map[uint64]int32{}, seed: maphash.MakeSeed(), report: &Report{}}
	}

	// Some identities worked out with the batch, the others not (zero).
	ids := make([]identity, len(recs))
	for _, i := range []int{0, 1, 4} {
		ids[i] = m.identify(recs[i])
	}
	for _, ids := range [][]identity{ids, nil} {
		c, err := newRun().process(context.Background(), m, recs, ids, nil, 6, 7, known)
		require.NoError(t, err)
		require.Equal(t, parsed(3, 4, 5), c.rows)
		require.Equal(t, []RowResult{{Num: 2, Key: "id:A1", Outcome: OutcomeUnchanged},
			{Num: 6, Key: "id:A4", Outcome: OutcomeRejected, Reason: ReasonTruncated, Detail: parsed(6)[0].Detail},
			{Num: 7, Key: "id:A1", Outcome: OutcomeRejected, Reason: ReasonDuplicateKey, Detail: "row 2 has the same key id:A1"}},
			c.pending)
	}

	// A first import looks nothing up and parses every row.
	r := newRun()
	r.fresh = true
	c, err := r.process(context.Background(), m, recs[:5], nil, nil, 5, 6, nil)
	require.NoError(t, err)
	require.Equal(t, parsed(2, 3, 4, 5), c.rows)

	// The worked-out checksum is the row's: it is not computed again (one
	// planted shows it).
	planted := identity{num: 4, key: "id:A3", sum: [16]byte{1, 2, 3}}
	c, err = newRun().process(context.Background(), m, recs[2:3], []identity{planted}, nil, 1, 4, known)
	require.NoError(t, err)
	require.Len(t, c.rows, 1)
	require.Equal(t, planted.sum, c.rows[0].Checksum)
}
