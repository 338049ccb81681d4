package demo

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/leadify/leadify/shared/commission"
	"github.com/leadify/leadify/shared/money"
	"github.com/leadify/leadify/shared/parcel"
	"github.com/leadify/leadify/syncserver/billing"
	"github.com/leadify/leadify/syncserver/billing/smtptest"
	"github.com/leadify/leadify/syncserver/postgres"
	"github.com/leadify/leadify/syncserver/secrets"
)

// InvoiceOptions configure RunInvoices.
type InvoiceOptions struct {
	// PublicURL is the server the invoices' QR codes link to.
	PublicURL string
	// Dir receives the PDFs and the emailed message (.eml).
	Dir string
	// Now places the month: the invoices are for the calendar month before it.
	Now time.Time
}

// demoStore is a seeded demo store and what its month is made of.
type demoStore struct {
	id      uuid.UUID
	name    string
	carrier string
	owner   string // the seller's email
	agents  []uuid.UUID
}

// RunInvoices gives every demo store its invoice for last month, the way the
// period-end batch does: the store's sandbox history for the month (a
// deterministic set of delivered, refused and returned parcels per store —
// the sandbox's past, not parcels of the parcels table) goes through the
// store's commission rules (a 3 % platform fee and a 10 MAD bonus to the
// confirming agent are added if the store has none), then each invoice is
// drafted, numbered, signed, rendered, sealed and stored; the first store's
// is emailed to its seller through an in-process SMTP sink that saves the
// message in Dir. Every PDF is written to Dir. Re-running changes nothing: an
// issued invoice is not redrafted, an emailed one not re-sent.
func RunInvoices(ctx context.Context, pool *pgxpool.Pool, kr *secrets.Keyring, o InvoiceOptions, out io.Writer) error {
	if kr == nil {
		return errors.New("demo invoices: no secret keys (LEADIFY_SECRET_KEYS) to seal the signing key with")
	}
	stores, err := loadDemoStores(ctx, pool)
	if err != nil {
		return err
	}
	if len(stores) == 0 {
		return errors.New("demo invoices: no demo stores (run seed-demo first)")
	}
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return err
	}
	from, to := billing.MonthOf(time.Date(o.Now.Year(), o.Now.Month(), 1, 0, 0, 0, 0, time.UTC).AddDate(0, -1, 0))
	hist := history{}
	for _, st := range stores {
		if hist[st.id], err = monthOf(st, from, to); err != nil {
			return err
		}
		if err := ensureRules(ctx, pool, st.id, from); err != nil {
			return err
		}
		if _, err := (&billing.Runner{Pool: pool, Source: hist}).Run(ctx, st.id, from); err != nil {
			return fmt.Errorf("commissions of %s: %w", st.name, err)
		}
	}
	sink, err := smtptest.Listen("127.0.0.1:0")
	if err != nil {
		return err
	}
	defer sink.Close()
	svc := &billing.Service{Pool: pool, Source: hist, Secrets: kr, Config: billing.Config{PublicURL: o.PublicURL}}
	mailer := &billing.Service{Pool: pool, Source: hist, Secrets: kr, Config: billing.Config{PublicURL: o.PublicURL,
		Mail: billing.MailConfig{Addr: sink.Addr, From: "Leadify <factures@leadify.ma>"}}}
	fmt.Fprintf(out, "Invoices for %s (sandbox history of the month; PDFs in %s):\n", from.Format("01/2006"), o.Dir)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "STORE\tINVOICE\tLINES\tNET PAYABLE\tPDF")
	for i, st := range stores {
		s := svc
		if i == 0 {
			s = mailer // the first store's invoice goes out by email
		}
		id, err := s.Close(ctx, st.id, from, to)
		if err != nil {
			return fmt.Errorf("invoice of %s: %w", st.name, err)
		}
		rec, err := svc.Get(ctx, postgres.StoreScope(st.id), st.id, id)
		if err != nil {
			return err
		}
		name := rec.Invoice.NumberText() + "-" + slug(st.name) + ".pdf"
		if err := os.WriteFile(filepath.Join(o.Dir, name), rec.PDF, 0o644); err != nil {
			return err
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", st.name, rec.Invoice.NumberText(), len(rec.Invoice.Lines),
			rec.Invoice.Totals.Net.Format(), filepath.Join(o.Dir, name))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for i, m := range sink.Messages() {
		path := filepath.Join(o.Dir, fmt.Sprintf("email-%d.eml", i+1))
		if err := os.WriteFile(path, m.Data, 0o644); err != nil {
			return err
		}
		fmt.Fprintf(out, "Emailed to %s through the demo's SMTP sink: %s\n", strings.Join(m.To, ", "), path)
	}
	return nil
}

func slug(s string) string {
	return strings.ToLower(strings.ReplaceAll(s, " ", "-"))
}

// loadDemoStores reads the seeded demo stores, their owners and agents, in
// the order the demo seeds them.
func loadDemoStores(ctx context.Context, pool *pgxpool.Pool) ([]demoStore, error) {
	var out []demoStore
	err := postgres.InTx(ctx, pool, postgres.Scope{AllStores: true}, func(tx *postgres.Tx) error {
		for _, sp := range sellers {
			for _, spec := range sp.stores {
				st := demoStore{name: spec.name, carrier: spec.carrier, owner: sp.email}
				err := tx.QueryRow(ctx, `SELECT s.id FROM stores s JOIN sellers se ON se.id = s.seller_id
JOIN users u ON u.id = se.owner_user_id WHERE s.name = $1 AND u.email = $2 AND s.deleted_at IS NULL`, spec.name, sp.email).Scan(&st.id)
				if errors.Is(err, pgx.ErrNoRows) {
					continue
				}
				if err != nil {
					return fmt.Errorf("demo store %s: %w", spec.name, err)
				}
				rows, err := tx.Query(ctx, `SELECT m.user_id FROM store_members m JOIN users u ON u.id = m.user_id
WHERE m.store_id = $1 AND m.role = 'agent' ORDER BY u.email`, st.id)
				if err != nil {
					return err
				}
				if st.agents, err = pgx.CollectRows(rows, pgx.RowTo[uuid.UUID]); err != nil {
					return err
				}
				out = append(out, st)
			}
		}
		return nil
	})
	return out, err
}

// ensureRules gives a store without commission rules the demo's two.
func ensureRules(ctx context.Context, pool *pgxpool.Pool, store uuid.UUID, from time.Time) error {
	return postgres.InTx(ctx, pool, postgres.StoreScope(store), func(tx *postgres.Tx) error {
		rules, err := billing.LoadRules(ctx, tx, store)
		if err != nil || len(rules) > 0 {
			return err
		}
		start := from.AddDate(0, -1, 0)
		for _, r := range []commission.Rule{
			{ID: uuid.NewString(), Name: "Frais de plateforme", Beneficiary: commission.BeneficiaryPlatform,
				Trigger: commission.TriggerDelivered, Kind: commission.KindPercentage, RateBP: 300, ValidFrom: start},
			{ID: uuid.NewString(), Name: "Prime de confirmation", Beneficiary: commission.BeneficiaryAgent,
				Trigger: commission.TriggerDelivered, Kind: commission.KindFixed, Fixed: 10_00, ValidFrom: start},
		} {
			if err := billing.SaveRule(ctx, tx, store, uuid.Nil, r); err != nil {
				return fmt.Errorf("demo rule %s: %w", r.Name, err)
			}
		}
		return nil
	})
}

// history is the demo stores' month: a billing.ParcelSource.
type history map[uuid.UUID]billing.SliceSource

// Parcels implements billing.ParcelSource.
func (h history) Parcels(ctx context.Context, store uuid.UUID, from, to time.Time, fn func(billing.DeliveredParcel) error) error {
	return h[store].Parcels(ctx, store, from, to, fn)
}

var demoCities = []string{"casablanca", "rabat", "marrakech", "fes", "tanger", "agadir", "meknes", "oujda", "kenitra", "el-jadida"}

// monthOf makes the store's month: 45 to 84 parcels, the same ones on every
// run (seeded by the store), about 80 % delivered, the rest refused or
// returned, sorted by when they reached that status, with the fees the
// store's carrier's demo price list charges for them.
func monthOf(st demoStore, from, to time.Time) (billing.SliceSource, error) {
	seed := binary.BigEndian.Uint64(st.id[:8]) ^ uint64(from.Unix())
	rng := rand.New(rand.NewPCG(seed, 2026))
	n := 45 + rng.IntN(40)
	span := to.Sub(from)
	prefix := strings.ToUpper(st.carrier[:3])
	out := make(billing.SliceSource, n)
	for i := range n {
		at := from.Add(time.Duration(i+1) * span / time.Duration(n+1)).Add(time.Duration(rng.IntN(3600)) * time.Second)
		created := at.Add(-time.Duration(24+rng.IntN(72)) * time.Hour)
		var id uuid.UUID
		binary.BigEndian.PutUint64(id[:8], uint64(created.UnixMilli())<<16|rng.Uint64()&0xffff)
		binary.BigEndian.PutUint64(id[8:], rng.Uint64())
		id[6], id[8] = id[6]&0x0f|0x70, id[8]&0x3f|0x80
		status := parcel.StatusDelivered
		switch r := rng.IntN(100); {
		case r < 8:
			status = parcel.StatusRefused
		case r < 20:
			status = parcel.StatusReturned
		}
		cod := money.Amount(99_00 + rng.IntN(80)*10_00)
		var lead uuid.UUID
		binary.BigEndian.PutUint64(lead[:8], rng.Uint64())
		binary.BigEndian.PutUint64(lead[8:], rng.Uint64())
		cityID := demoCities[rng.IntN(len(demoCities))]
		fees, err := demoFees(st.carrier, cityID, at, status == parcel.StatusDelivered, cod)
		if err != nil {
			return nil, fmt.Errorf("fees of %s: %w", st.name, err)
		}
		p := billing.DeliveredParcel{ID: id, Store: st.id, Lead: lead, Carrier: st.carrier,
			City: cityID, Category: "demo", Ref: fmt.Sprintf("%s%08d", prefix, 10_000_000+int(seed%1_000_000)+i),
			COD: cod, DeliveryFee: fees.Delivery, CODFee: fees.COD, ReturnFee: fees.Return,
			ConfirmedAt: created.Add(-2 * time.Hour), DeliveredAt: at, Status: status}
		if len(st.agents) > 0 {
			p.Agent = st.agents[i%len(st.agents)]
		}
		out[i] = p
	}
	return out, nil
}
