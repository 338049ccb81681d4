package localstore_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/leadify/leadify/desktop/localstore"
	leadifyv1 "github.com/leadify/leadify/proto/gen/leadify/v1"
	"github.com/leadify/leadify/shared/mutation"
)

// benchLeads is the initial-sync size; LEADIFY_BENCH_ROWS overrides it.
func benchLeads(b *testing.B) int {
	if s := os.Getenv("LEADIFY_BENCH_ROWS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			b.Fatal(err)
		}
		return n
	}
	return 100_000
}

// pages builds an initial sync of n leads of one store as the server sends
// it: pages of 5,000 rows (syncer.MaxPageRows), versions 1…n.
func pages(n int) []*leadifyv1.PullResponse {
	store := uuid.NewString()
	now := timestamppb.New(time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC))
	items := []byte(`[{"sku":"ARG-50","name":"Huile d'argan 50 ml","qty":2,"unit_price":12900}]`)
	var out []*leadifyv1.PullResponse
	for start := 0; start < n; start += 5000 {
		sc := &leadifyv1.ScopeChanges{ScopeId: store, Kind: leadifyv1.ScopeKind_SCOPE_KIND_STORE, Epoch: 1}
		for i := start; i < min(start+5000, n); i++ {
			id := uuid.NewString()
			sc.Changes = append(sc.Changes, &leadifyv1.Change{Version: int64(i + 1), Id: id, Table: "leads",
				Row: &leadifyv1.Change_Lead{Lead: &leadifyv1.LeadRow{Id: id, StoreId: store, CreatedAt: now, UpdatedAt: now,
					Status: "new", CustomerName: fmt.Sprintf("Client %d", i), PhoneRaw: "0612345678",
					PhoneE164: "+212612345678", CityId: "casablanca", CityRaw: "Casa", Address: fmt.Sprintf("%d Rue Test", i),
					ItemsJson: items, Cod: 25800, Source: "sheet", ExternalRef: strconv.Itoa(i), CustomJson: []byte(`{}`)}}})
			sc.Cursor = int64(i + 1)
		}
		sc.HasMore = start+5000 < n
		out = append(out, &leadifyv1.PullResponse{Scopes: []*leadifyv1.ScopeChanges{sc}})
	}
	return out
}

func openBench(b *testing.B) *localstore.DB {
	db, err := localstore.Open(context.Background(), filepath.Join(b.TempDir(), "bench.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = db.Close() })
	return db
}

// BenchmarkApplyPage is an initial sync of N leads into an empty replica,
// page by page through ApplyPage (one transaction per page, fsync on).
func BenchmarkApplyPage(b *testing.B) {
	n := benchLeads(b)
	ps := pages(n)
	ctx := context.Background()
	for b.Loop() {
		b.StopTimer()
		db := openBench(b)
		b.StartTimer()
		for _, p := range ps {
			if err := db.ApplyPage(ctx, p); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}

// BenchmarkInitialSync is an initial sync of N leads as syncclient applies
// it: pages of 5,000 rows gathered four at a time into one ApplyPages
// transaction (fsync on).
func BenchmarkInitialSync(b *testing.B) {
	n := benchLeads(b)
	ps := pages(n)
	ctx := context.Background()
	for b.Loop() {
		b.StopTimer()
		db := openBench(b)
		b.StartTimer()
		for i := 0; i < len(ps); i += 4 {
			if err := db.ApplyPages(ctx, ps[i:min(i+4, len(ps))]...); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}

// BenchmarkRawInsert is the baseline: the same rows into the same table and
// indexes with one prepared statement in one transaction, fsync on.
func BenchmarkRawInsert(b *testing.B) {
	n := benchLeads(b)
	ps := pages(n)
	ctx := context.Background()
	const insert = `INSERT INTO leads (id, store_id, version, redacted, created_at, updated_at, status,
  customer_name, phone_raw, phone_e164, city_id, city_raw, address, items_json, cod, source, external_ref, custom_json,
  assigned_to, lease_until, call_attempts, callback_at, cancel_reason, duplicate_of, score)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	for b.Loop() {
		b.StopTimer()
		db := localstore.SQL(openBench(b))
		b.StartTimer()
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			b.Fatal(err)
		}
		stmt, err := tx.PrepareContext(ctx, insert)
		if err != nil {
			b.Fatal(err)
		}
		for _, p := range ps {
			for _, ch := range p.Scopes[0].Changes {
				l := ch.GetLead()
				if _, err := stmt.ExecContext(ctx, l.Id, l.StoreId, ch.Version, false, l.CreatedAt.AsTime().UnixMicro(),
					l.UpdatedAt.AsTime().UnixMicro(), l.Status, l.CustomerName, l.PhoneRaw, l.PhoneE164, l.CityId, l.CityRaw,
					l.Address, l.ItemsJson, l.Cod, l.Source, l.ExternalRef, l.CustomJson, l.AssignedTo, 0, l.CallAttempts, 0,
					l.CancelReason, l.DuplicateOf, l.Score); err != nil {
					b.Fatal(err)
				}
			}
		}
		if err := tx.Commit(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}

// BenchmarkRebase10kPending applies one 5,000-row page to a replica of N
// leads holding 10,000 pending mutations, 5,000 of them on the page's leads:
// undo those, apply, re-apply them.
func BenchmarkRebase10kPending(b *testing.B) { benchRebase(b, 10_000) }

// BenchmarkRebase10kPendingAllTouched is the worst case: all 10,000 pending
// mutations (two on each of the page's 5,000 leads) are undone and redone.
func BenchmarkRebase10kPendingAllTouched(b *testing.B) { benchRebase(b, 5_000) }

// benchRebase spreads 10,000 pending mutations over the first spread leads.
func benchRebase(b *testing.B, spread int) {
	n := benchLeads(b)
	ps := pages(n)
	ctx := context.Background()
	db := openBench(b)
	store := uuid.MustParse(ps[0].Scopes[0].ScopeId)
	if err := db.SetIdentity(ctx, uuid.New(), "Salma", []localstore.Membership{{StoreID: store,
		Role: "seller", Permissions: []string{"leads.call"}}}); err != nil {
		b.Fatal(err)
	}
	for _, p := range ps {
		if err := db.ApplyPage(ctx, p); err != nil {
			b.Fatal(err)
		}
	}
	var leads []uuid.UUID
	for _, p := range ps {
		for _, ch := range p.Scopes[0].Changes {
			leads = append(leads, uuid.MustParse(ch.Id))
		}
	}
	for i := range 10_000 {
		if _, err := db.Do(ctx, store, &mutation.AddNote{Lead: leads[i%min(spread, len(leads))], EventID: uuid.New(), Note: "pending"}); err != nil {
			b.Fatal(err)
		}
	}
	// The worst case: the page rewrites 5,000 leads that have pending mutations.
	last := proto.Clone(ps[0]).(*leadifyv1.PullResponse)
	sc := last.Scopes[0]
	for _, ch := range sc.Changes {
		ch.Version += int64(n)
		ch.GetLead().Status = "no_answer"
	}
	sc.Cursor += int64(n)
	for b.Loop() {
		if err := db.ApplyPage(ctx, last); err != nil {
			b.Fatal(err)
		}
	}
}
