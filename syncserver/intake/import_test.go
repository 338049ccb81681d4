package intake_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"connectrpc.com/connect"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	leadifyv1 "github.com/leadify/leadify/proto/gen/leadify/v1"
	"github.com/leadify/leadify/syncserver/intake"
	"github.com/leadify/leadify/syncserver/intake/sample"
	"github.com/leadify/leadify/syncserver/postgres"
	"github.com/leadify/leadify/syncserver/servertest"
)

type bundle struct {
	env    *servertest.Env
	tenant *servertest.Tenant
	im     *intake.Importer
	target intake.Target
}

func setup(t *testing.T) *bundle {
	t.Helper()
	env := servertest.Start(t)
	tn := env.NewTenant(env.Admin(), "intake"+uuid.NewString()[:6])
	b := &bundle{env: env, tenant: tn, im: &intake.Importer{Pool: env.DB.App}}
	var src uuid.UUID
	env.InStore(func(tx *postgres.Tx) error {
		var err error
		src, err = intake.FileSource(context.Background(), tx, tn.StoreID)
		return err
	}, tn.StoreID)
	b.target = intake.Target{StoreID: tn.StoreID, SellerID: tn.SellerID, SourceID: src, Source: "file"}
	return b
}

func (b *bundle) importCSV(t *testing.T, data string, opts intake.RunOptions) *intake.Report {
	t.Helper()
	src, err := intake.NewCSV(strings.NewReader(data))
	require.NoError(t, err)
	m, err := intake.Resolve(intake.Suggest(src.Header()), src.Header())
	require.NoError(t, err)
	opts.KeepRows = true
	rep, err := b.im.Run(context.Background(), b.target, m, src, opts)
	require.NoError(t, err)
	return rep
}

func (b *bundle) count(t *testing.T, query string, args ...any) int {
	t.Helper()
	var n int
	b.env.InStore(func(tx *postgres.Tx) error { return tx.QueryRow(context.Background(), query, args...).Scan(&n) }, b.tenant.StoreID)
	return n
}

func TestImportSampleTwice(t *testing.T) {
	t.Parallel()
	b := setup(t)
	data := sample.CSV

	var chunks int
	rep := b.importCSV(t, string(data), intake.RunOptions{Chunk: 100, OnChunk: func(intake.Progress) { chunks++ }})
	c := rep.Counts
	t.Logf("first import: %+v", c)
	require.Equal(t, 989, c.Rows())
	require.Equal(t, 989, len(rep.Rows))
	require.GreaterOrEqual(t, chunks, 10)
	require.Positive(t, c.Imported)
	require.Positive(t, c.Duplicate, "the sample repeats orders under new order ids")
	require.Positive(t, c.Rejected)
	require.Zero(t, c.Updated)
	leads := b.count(t, `SELECT count(*) FROM leads WHERE store_id = $1`, b.tenant.StoreID)
	require.Equal(t, c.Imported+c.Duplicate, leads)
	dups := b.count(t, `SELECT count(*) FROM leads WHERE store_id = $1 AND status = 'duplicate' AND duplicate_of IS NOT NULL`, b.tenant.StoreID)
	require.Equal(t, c.Duplicate, dups)
	for _, r := range rep.Rows {
		if r.Outcome == intake.OutcomeRejected {
			require.NotEmpty(t, r.Reason, "row %d", r.Num)
		}
	}
	// Raw text is kept beside the parsed value.
	var raw, e164, cityRaw, cityID string
	b.env.InStore(func(tx *postgres.Tx) error {
		return tx.QueryRow(context.Background(), `SELECT phone_raw, phone_e164, city_raw, city_id FROM leads
WHERE store_id = $1 AND external_ref = 'ORD-000002'`, b.tenant.StoreID).Scan(&raw, &e164, &cityRaw, &cityID)
	}, b.tenant.StoreID)
	require.Equal(t, []string{"06 51 81 90 93", "+212651819093", "فاس", "fes"}, []string{raw, e164, cityRaw, cityID})

	customers := b.count(t, `SELECT count(*) FROM customers WHERE seller_id = $1`, b.tenant.SellerID)
	require.Positive(t, customers)
	require.LessOrEqual(t, customers, leads)

	// The same file again: nothing is written, nothing doubles.
	again := b.importCSV(t, string(data), intake.RunOptions{})
	t.Logf("second import: %+v", again.Counts)
	require.Equal(t, c.Imported+c.Duplicate, again.Counts.Unchanged)
	require.Equal(t, c.Rejected, again.Counts.Rejected)
	require.Zero(t, again.Counts.Imported+again.Counts.Updated+again.Counts.Duplicate)
	require.Equal(t, leads, b.count(t, `SELECT count(*) FROM leads WHERE store_id = $1`, b.tenant.StoreID))
}

func TestImportUpdatesOpenLeads(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rep := b.importCSV(t, "N° Commande,Téléphone,Ville,Prix,Produit\nA1,0612345678,Rabat,100,Robe\nA2,0612345679,Fes,200,Sac\n", intake.RunOptions{})
	require.Equal(t, 2, rep.Counts.Imported)
	var version int64
	b.env.InStore(func(tx *postgres.Tx) error {
		return tx.QueryRow(context.Background(), `SELECT version FROM leads WHERE store_id = $1 AND external_ref = 'A1'`, b.tenant.StoreID).Scan(&version)
	}, b.tenant.StoreID)

	// A1's price changes, A2 stays, A3 is new; the rows moved.
	const moved = "N° Commande,Téléphone,Ville,Prix,Produit\nA3,0611111111,Rabat,50,Gaine\nA2,0612345679,Fes,200,Sac\nA1,0612345678,Rabat,150,Robe\n"
	rep = b.importCSV(t, moved, intake.RunOptions{})
	require.Equal(t, intake.Counts{Imported: 1, Updated: 1, Unchanged: 1}, rep.Counts)
	// What was recorded for the new and the updated row is their checksum.
	require.Equal(t, intake.Counts{Unchanged: 3}, b.importCSV(t, moved, intake.RunOptions{}).Counts)
	var cod, v2 int64
	b.env.InStore(func(tx *postgres.Tx) error {
		return tx.QueryRow(context.Background(), `SELECT cod, version FROM leads WHERE store_id = $1 AND external_ref = 'A1'`, b.tenant.StoreID).Scan(&cod, &v2)
	}, b.tenant.StoreID)
	require.EqualValues(t, 15000, cod)
	require.Greater(t, v2, version)
}

func TestImportDuplicateAcrossStoresOfSeller(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rep := b.importCSV(t, "Phone,Product,Date\n0612345678,Robe,2026-11-01\n", intake.RunOptions{})
	require.Equal(t, 1, rep.Counts.Imported)
	original := rep.Rows[0].LeadID

	// The seller's second store gets the same customer ordering the same
	// product two days later, and a different product.
	second := b.secondStore(t)
	rep = b.importInto(t, second, "Phone,Product,Date\n06 12 34 56 78,robe,2026-11-03\n0612345678,Sac,2026-11-03\n")
	require.Equal(t, intake.Counts{Duplicate: 1, Imported: 1}, rep.Counts)
	require.Equal(t, original, rep.Rows[0].DuplicateOf)
}

// secondStore creates another store of the tenant's seller.
func (b *bundle) secondStore(t *testing.T) uuid.UUID {
	t.Helper()
	st, err := b.tenant.Seller.Accounts.CreateStore(context.Background(), connect.NewRequest(&leadifyv1.CreateStoreRequest{
		SellerId: b.tenant.SellerID.String(), Settings: &leadifyv1.StoreSettings{Name: "second"}}))
	require.NoError(t, err)
	return uuid.MustParse(st.Msg.Store.Id)
}

func (b *bundle) importInto(t *testing.T, store uuid.UUID, data string) *intake.Report {
	t.Helper()
	var src uuid.UUID
	b.env.InStore(func(tx *postgres.Tx) error {
		var err error
		src, err = intake.FileSource(context.Background(), tx, store)
		return err
	}, store)
	other := &bundle{env: b.env, tenant: b.tenant, im: b.im,
		target: intake.Target{StoreID: store, SellerID: b.tenant.SellerID, SourceID: src, Source: "file"}}
	return other.importCSV(t, data, intake.RunOptions{})
}

// batched serves a CSV as a source read in one batch (as Sheets is), so the
// importer looks its keys up ahead and reports unchanged rows as it reads.
type batched struct {
	header  []string
	rest    []intake.Record
	fetched bool
}

func newBatched(t *testing.T, data string) *batched {
	t.Helper()
	src, err := intake.NewCSV(strings.NewReader(data))
	require.NoError(t, err)
	b := &batched{header: src.Header()}
	for {
		rec, err := src.Next()
		if errors.Is(err, io.EOF) {
			return b
		}
		require.NoError(t, err)
		b.rest = append(b.rest, rec)
	}
}

func (b *batched) Header() []string { return b.header }

func (b *batched) Next() (intake.Record, error) {
	b.fetched = true
	if len(b.rest) == 0 {
		return intake.Record{}, io.EOF
	}
	rec := b.rest[0]
	b.rest = b.rest[1:]
	return rec, nil
}

func (b *batched) Buffered() int {
	if !b.fetched {
		return 0
	}
	return len(b.rest)
}

func (b *batched) Peek() []intake.Record { return b.rest }

// A re-sync reports unchanged rows as it reads them, but a key still belongs
// to the first row that has it: here row 2 changed and row 3 repeats its
// order id with what was recorded for it.
func TestResyncKeepsKeysInSheetOrder(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const header = "N° Commande,Téléphone,Ville,Prix,Produit\n"
	rep := b.importCSV(t, header+"A1,0612345678,Rabat,100,Robe\nA2,0612345679,Fes,200,Sac\n", intake.RunOptions{})
	require.Equal(t, 2, rep.Counts.Imported)

	src := newBatched(t, header+"A1,0612345678,Rabat,150,Robe\nA1,0612345678,Rabat,100,Robe\nA2,0612345679,Fes,200,Sac\n")
	m, err := intake.Resolve(intake.Suggest(src.Header()), src.Header())
	require.NoError(t, err)
	rep, err = b.im.Run(context.Background(), b.target, m, src, intake.RunOptions{KeepRows: true})
	require.NoError(t, err)
	require.Equal(t, intake.Counts{Updated: 1, Rejected: 1, Unchanged: 1}, rep.Counts)
	require.Len(t, rep.Rows, 3)
	require.Equal(t, intake.OutcomeUpdated, rep.Rows[0].Outcome)
	require.Equal(t, intake.OutcomeRejected, rep.Rows[1].Outcome)
	require.Equal(t, intake.ReasonDuplicateKey, rep.Rows[1].Reason)
	require.Equal(t, intake.OutcomeUnchanged, rep.Rows[2].Outcome)
}

// A re-sync of a batch whose order ids are far apart in key order (a sheet
// not sorted by them) reports its recorded rows unchanged and imports its new
// one, end to end. Its keys are probed one by one, the range they span
// holding many more: that choice, and what each way reads, is checked by
// TestLookUpChoosesRangeOrProbes. These counts cannot tell the ways apart,
// nor a key missed ahead (the write would still find it recorded).
func TestResyncScatteredKeys(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var sheet strings.Builder
	sheet.WriteString("N° Commande,Téléphone,Ville,Prix,Produit\n")
	for i := range 100 {
		fmt.Fprintf(&sheet, "A%02d,06%08d,Rabat,100,Robe\n", i, 12345600+i)
	}
	rep := b.importCSV(t, sheet.String(), intake.RunOptions{})
	require.Equal(t, 100, rep.Counts.Imported)

	lines := strings.Split(strings.TrimSpace(sheet.String()), "\n")
	src := newBatched(t, lines[0]+"\n"+lines[1]+"\n"+lines[100]+"\nA100,0612345555,Fes,50,Sac\n")
	m, err := intake.Resolve(intake.Suggest(src.Header()), src.Header())
	require.NoError(t, err)
	rep, err = b.im.Run(context.Background(), b.target, m, src, intake.RunOptions{})
	require.NoError(t, err)
	require.Equal(t, intake.Counts{Unchanged: 2, Imported: 1}, rep.Counts)
	require.Equal(t, 101, b.count(t, `SELECT count(*) FROM leads WHERE store_id = $1`, b.tenant.StoreID))
}
