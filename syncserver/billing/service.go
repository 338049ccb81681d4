package billing

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/protobuf/encoding/protojson"

	leadifyv1 "github.com/leadify/leadify/proto/gen/leadify/v1"
	"github.com/leadify/leadify/shared/money"
	"github.com/leadify/leadify/syncserver/audit"
	"github.com/leadify/leadify/syncserver/postgres"
	"github.com/leadify/leadify/syncserver/secrets"
	"github.com/leadify/leadify/syncserver/syncer"
)

// Errors of the invoice lifecycle.
var (
	// ErrIssued: the invoice (or the period's invoice) is no longer a draft.
	ErrIssued = errors.New("invoice already issued")
	// ErrNotIssued: payments are recorded against issued invoices only.
	ErrNotIssued = errors.New("invoice is a draft")
	// ErrOverpaid: a payment above what remains due.
	ErrOverpaid = errors.New("payment exceeds the amount due")
	// ErrBadPeriod: a period that is empty or not whole days.
	ErrBadPeriod = errors.New("invalid invoice period")
)

// Config configures invoices.
type Config struct {
	// PublicURL is the server's public base URL: the QR codes link to
	// PublicURL + VerifyPath.
	PublicURL string
	Mail      MailConfig
}

// Service manages invoices: drafts, issuing with continuous numbers per
// seller, payments, the PDF and its verification.
type Service struct {
	Pool    *pgxpool.Pool
	Source  ParcelSource
	Secrets *secrets.Keyring
	Config  Config
	Now     func() time.Time

	mu     sync.Mutex
	signer *Signer
	keys   PublicKeys
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Record is an invoice as stored.
type Record struct {
	Invoice  Invoice
	Status   string
	Paid     money.Amount
	PDF      []byte
	Version  int64
	Emailed  bool
	Branding Branding
}

// storeInfo loads what an invoice prints about its store.
func storeInfo(ctx context.Context, tx pgx.Tx, store uuid.UUID) (seller uuid.UUID, name string, party Party, b Branding, err error) {
	var raw []byte
	err = tx.QueryRow(ctx, `SELECT seller_id, name, coalesce(logo, ''::bytea), primary_color, accent_color, invoice
FROM stores WHERE id = $1 AND deleted_at IS NULL`, store).Scan(&seller, &name, &b.Logo, &b.Primary, &b.Accent, &raw)
	if err != nil {
		return seller, name, party, b, fmt.Errorf("store %v: %w", store, postgres.Translate(err))
	}
	var d leadifyv1.InvoiceDetails
	if len(raw) > 0 {
		if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(raw, &d); err != nil {
			return seller, name, party, b, fmt.Errorf("store %v invoice settings: %w", store, err)
		}
	}
	party = Party{LegalName: d.GetLegalName(), Address: d.GetAddress(), ICE: d.GetIce(), RC: d.GetRc(), TaxID: d.GetTaxId(),
		BankIBAN: d.GetBankIban(), VATRateBP: int64(d.GetVatRateBp()), VATApplicable: d.GetVatApplicable(), FooterNote: d.GetFooterNote()}
	if party.LegalName == "" {
		party.LegalName = name
	}
	return seller, name, party, b, nil
}

// collect streams the period's parcels with a final status in the period.
func (s *Service) collect(ctx context.Context, store uuid.UUID, from, to time.Time) ([]DeliveredParcel, error) {
	var out []DeliveredParcel
	err := s.Source.Parcels(ctx, store, from, to, func(p DeliveredParcel) error {
		if inPeriod(p.DeliveredAt, from, to) {
			out = append(out, p)
		}
		return nil
	})
	return out, err
}

// platformFees sums the platform's ledger entries (net of reversals) per parcel.
func platformFees(ctx context.Context, tx pgx.Tx, store uuid.UUID, ids []uuid.UUID) (map[uuid.UUID]money.Amount, error) {
	rows, err := tx.Query(ctx, `SELECT p.id, e.amount FROM unnest($2::uuid[]) AS p(id), LATERAL (
  SELECT sum(amount)::bigint AS amount FROM commission_entries WHERE store_id = (SELECT $1::uuid) AND parcel_id = p.id AND beneficiary = 'platform') e
WHERE e.amount IS NOT NULL`, store, ids) // by parcel, whatever the planner believes of the store: see probeSQL
	if err != nil {
		return nil, fmt.Errorf("platform fees: %w", err)
	}
	defer rows.Close()
	fees := make(map[uuid.UUID]money.Amount, len(ids))
	for rows.Next() {
		var id uuid.UUID
		var a int64
		if err := rows.Scan(&id, &a); err != nil {
			return nil, fmt.Errorf("platform fees: %w", err)
		}
		fees[id] = money.Amount(a)
	}
	return fees, rows.Err()
}

// Draft builds (or rebuilds) the store's draft invoice for [from, to), whole
// days in UTC. Fails with ErrIssued if the period's invoice was issued,
// ErrBadPeriod for an empty or partial-day period, ErrDuplicateParcel or
// money.ErrOverflow for bad parcel data.
func (s *Service) Draft(ctx context.Context, store, actor uuid.UUID, from, to time.Time) (*Invoice, error) {
	from, to = from.UTC(), to.UTC()
	if !to.After(from) || from.Truncate(24*time.Hour) != from || to.Truncate(24*time.Hour) != to {
		return nil, fmt.Errorf("%w: [%s, %s)", ErrBadPeriod, from.Format(time.RFC3339), to.Format(time.RFC3339))
	}
	parcels, err := s.collect(ctx, store, from, to)
	if err != nil {
		return nil, err
	}
	ids := make([]uuid.UUID, len(parcels))
	for i, p := range parcels {
		ids[i] = p.ID
	}
	var inv *Invoice
	err = syncer.Write(ctx, s.Pool, postgres.StoreScope(store), func(w *syncer.Writer) error {
		tx := w.Tx
		seller, name, party, _, err := storeInfo(ctx, tx, store)
		if err != nil {
			return err
		}
		fees, err := platformFees(ctx, tx, store, ids)
		if err != nil {
			return err
		}
		var id uuid.UUID
		var status string
		err = tx.QueryRow(ctx, `SELECT id, status FROM invoices WHERE store_id = $1 AND period_start = $2 AND period_end = $3 FOR UPDATE`,
			store, from, to).Scan(&id, &status)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			id = uuid.Must(uuid.NewV7())
		case err != nil:
			return fmt.Errorf("find draft: %w", err)
		case status != InvoiceDraft:
			return fmt.Errorf("%w: the invoice of %s", ErrIssued, from.Format("2006-01"))
		}
		inv = &Invoice{ID: id, Store: store, Seller: seller, StoreName: name, Party: party, PeriodStart: from, PeriodEnd: to}
		if err := inv.Compute(parcels, fees); err != nil {
			return err
		}
		body, err := json.Marshal(inv)
		if err != nil {
			return err
		}
		v, err := w.Reserve(store, 1)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO invoices (store_id, id, version, seller_id, period_start, period_end, status, body, total)
VALUES ($1, $2, $3, $4, $5, $6, 'draft', $7, $8)
ON CONFLICT (store_id, id) DO UPDATE SET version = excluded.version, body = excluded.body, total = excluded.total, updated_at = now()`,
			store, id, v, seller, from, to, body, int64(inv.Totals.Net)); err != nil {
			return fmt.Errorf("save draft: %w", err)
		}
		return audit.Write(ctx, tx, audit.Entry{Actor: actor, Store: store, Action: "invoice.drafted", TargetType: "invoice",
			TargetID: id.String(), Summary: map[string]any{"period": from.Format("2006-01-02"), "lines": len(inv.Lines), "net": inv.Totals.Net}})
	})
	if err != nil {
		return nil, err
	}
	return inv, nil
}

// Issue gives a draft the seller's next invoice number, signs it, renders its
// PDF and stores all three in one transaction: numbers are continuous per
// seller, without gaps (a failed issue rolls its number back) and unique
// (the seller's counter row is locked until commit). Fails with ErrIssued if
// it is not a draft, postgres.ErrNotFound if there is no such invoice.
func (s *Service) Issue(ctx context.Context, store, id, actor uuid.UUID) (*Record, error) {
	signer, err := s.Signer(ctx)
	if err != nil {
		return nil, err
	}
	var rec *Record
	err = syncer.Write(ctx, s.Pool, postgres.StoreScope(store), func(w *syncer.Writer) error {
		tx := w.Tx
		r, err := loadRecord(ctx, tx, store, id, true)
		if err != nil {
			return err
		}
		if r.Status != InvoiceDraft {
			return fmt.Errorf("%w: %s", ErrIssued, r.Invoice.NumberText())
		}
		if _, err := tx.Exec(ctx, `INSERT INTO invoice_counters (seller_id) VALUES ($1) ON CONFLICT DO NOTHING`, r.Invoice.Seller); err != nil {
			return fmt.Errorf("invoice counter: %w", err)
		}
		if err := tx.QueryRow(ctx, `UPDATE invoice_counters SET last = last + 1 WHERE seller_id = $1 RETURNING last`,
			r.Invoice.Seller).Scan(&r.Invoice.Number); err != nil {
			return fmt.Errorf("next invoice number: %w", err)
		}
		r.Invoice.IssuedAt = s.now().UTC().Truncate(time.Second)
		claim, err := signer.Sign(&r.Invoice)
		if err != nil {
			return err
		}
		r.Status = InvoiceIssued
		var pdf bytes.Buffer
		if err := RenderPDF(&pdf, Document{Invoice: &r.Invoice, Branding: r.Branding, Status: r.Status,
			VerifyURL: claim.URL(s.Config.PublicURL)}); err != nil {
			return err
		}
		if r.PDF, err = signer.SealPDF(pdf.Bytes(), &r.Invoice, claim); err != nil {
			return err
		}
		body, err := json.Marshal(&r.Invoice)
		if err != nil {
			return err
		}
		if r.Version, err = w.Reserve(store, 1); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE invoices SET version = $3, number = $4, status = 'issued', body = $5, digest = $6,
  signature = $7, pdf = $8, issued_at = $9, updated_at = now() WHERE store_id = $1 AND id = $2`,
			store, id, r.Version, r.Invoice.Number, body, claim.Digest[:], claim.Signature, r.PDF, r.Invoice.IssuedAt); err != nil {
			return fmt.Errorf("issue invoice: %w", postgres.Translate(err))
		}
		rec = r
		return audit.Write(ctx, tx, audit.Entry{Actor: actor, Store: store, Action: "invoice.issued", TargetType: "invoice",
			TargetID: id.String(), Summary: map[string]any{"number": r.Invoice.NumberText(), "net": r.Invoice.Totals.Net}})
	})
	return rec, err
}

// loadRecord reads an invoice of the store (locking it if forUpdate).
// Returns postgres.ErrNotFound if there is none visible.
func loadRecord(ctx context.Context, tx pgx.Tx, store, id uuid.UUID, forUpdate bool) (*Record, error) {
	q := `SELECT i.status, i.body, i.paid, coalesce(i.pdf, ''::bytea), i.version, i.emailed_at IS NOT NULL,
  coalesce(s.logo, ''::bytea), s.primary_color, s.accent_color
FROM invoices i JOIN stores s ON s.id = i.store_id WHERE i.store_id = $1 AND i.id = $2`
	if forUpdate {
		q += ` FOR UPDATE OF i`
	}
	var r Record
	var body []byte
	var paid int64
	if err := tx.QueryRow(ctx, q, store, id).Scan(&r.Status, &body, &paid, &r.PDF, &r.Version, &r.Emailed,
		&r.Branding.Logo, &r.Branding.Primary, &r.Branding.Accent); err != nil {
		return nil, fmt.Errorf("invoice %v: %w", id, postgres.Translate(err))
	}
	r.Paid = money.Amount(paid)
	if err := json.Unmarshal(body, &r.Invoice); err != nil {
		return nil, fmt.Errorf("invoice %v body: %w", id, err)
	}
	return &r, nil
}

// Get returns an invoice of the store visible in scope.
func (s *Service) Get(ctx context.Context, scope postgres.Scope, store, id uuid.UUID) (*Record, error) {
	var r *Record
	err := postgres.InSnapshot(ctx, s.Pool, scope, func(tx *postgres.Tx) error {
		var err error
		r, err = loadRecord(ctx, tx, store, id, false)
		return err
	})
	return r, err
}

// due is what settles an invoice: the net payable, whichever way it flows.
func due(net money.Amount) money.Amount {
	if net < 0 {
		return -net
	}
	return net
}

// RecordPayment records a payment against an issued invoice and moves it to
// partly paid or paid. Fails with ErrNotIssued for a draft, ErrOverpaid if
// the amount exceeds what remains due or is not positive.
func (s *Service) RecordPayment(ctx context.Context, store, id, actor uuid.UUID, amount money.Amount, paidAt time.Time, ref string) (*Record, error) {
	if amount <= 0 {
		return nil, fmt.Errorf("%w: amount %s must be positive", ErrOverpaid, amount)
	}
	var rec *Record
	err := syncer.Write(ctx, s.Pool, postgres.StoreScope(store), func(w *syncer.Writer) error {
		tx := w.Tx
		r, err := loadRecord(ctx, tx, store, id, true)
		if err != nil {
			return err
		}
		if r.Status == InvoiceDraft {
			return ErrNotIssued
		}
		paid, err := r.Paid.Add(amount)
		if err != nil || paid > due(r.Invoice.Totals.Net) {
			return fmt.Errorf("%w: %s paid of %s due", ErrOverpaid, r.Paid, due(r.Invoice.Totals.Net))
		}
		r.Paid = paid
		r.Status = InvoicePartlyPaid
		if paid == due(r.Invoice.Totals.Net) {
			r.Status = InvoicePaid
		}
		if _, err := tx.Exec(ctx, `INSERT INTO invoice_payments (store_id, id, invoice_id, amount, paid_at, reference, created_by)
VALUES ($1, $2, $3, $4, $5, $6, $7)`, store, uuid.Must(uuid.NewV7()), id, int64(amount), paidAt, ref, nullID(actor)); err != nil {
			return fmt.Errorf("record payment: %w", err)
		}
		if r.Version, err = w.Reserve(store, 1); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE invoices SET version = $3, paid = $4, status = $5, updated_at = now()
WHERE store_id = $1 AND id = $2`, store, id, r.Version, int64(paid), r.Status); err != nil {
			return fmt.Errorf("record payment: %w", err)
		}
		rec = r
		return audit.Write(ctx, tx, audit.Entry{Actor: actor, Store: store, Action: "invoice.payment_recorded", TargetType: "invoice",
			TargetID: id.String(), Summary: map[string]any{"amount": amount, "reference": ref, "status": r.Status}})
	})
	return rec, err
}

func nullID(id uuid.UUID) *uuid.UUID {
	if id == uuid.Nil {
		return nil
	}
	return &id
}

// Signer returns the active signing key, creating and storing one (sealed
// with the secrets keyring) the first time.
func (s *Service) Signer(ctx context.Context) (*Signer, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.signer != nil {
		return s.signer, nil
	}
	if err := s.loadKeys(ctx); err != nil {
		return nil, err
	}
	if s.signer == nil {
		pub, priv, err := ed25519.GenerateKey(nil)
		if err != nil {
			return nil, err
		}
		id := "k" + s.now().UTC().Format("20060102") + "-" + uuid.NewString()[:8]
		sealed, err := s.Secrets.Seal(priv.Seed(), []byte("invoice_signing_keys:"+id))
		if err != nil {
			return nil, fmt.Errorf("seal signing key: %w", err)
		}
		if _, err := s.Pool.Exec(ctx, `INSERT INTO invoice_signing_keys (id, public_key, private_sealed) VALUES ($1, $2, $3)`,
			id, []byte(pub), sealed); err != nil {
			return nil, fmt.Errorf("store signing key: %w", err)
		}
		// Another instance may have raced us: the newest key wins for all.
		if err := s.loadKeys(ctx); err != nil {
			return nil, err
		}
	}
	return s.signer, nil
}

// loadKeys reads every signing key; the newest is the active signer.
func (s *Service) loadKeys(ctx context.Context) error {
	rows, err := s.Pool.Query(ctx, `SELECT id, public_key, private_sealed FROM invoice_signing_keys ORDER BY created_at, id`)
	if err != nil {
		return fmt.Errorf("load signing keys: %w", err)
	}
	defer rows.Close()
	keys := PublicKeys{}
	var newest, sealed string
	for rows.Next() {
		var id, sl string
		var pub []byte
		if err := rows.Scan(&id, &pub, &sl); err != nil {
			return fmt.Errorf("load signing keys: %w", err)
		}
		keys[id] = ed25519.PublicKey(pub)
		newest, sealed = id, sl
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("load signing keys: %w", err)
	}
	s.keys = keys
	if newest == "" {
		return nil
	}
	seed, err := s.Secrets.Open(sealed, []byte("invoice_signing_keys:"+newest))
	if err != nil {
		return fmt.Errorf("open signing key %s: %w", newest, err)
	}
	s.signer = &Signer{KeyID: newest, Key: ed25519.NewKeyFromSeed(seed)}
	return nil
}

// Verification is the outcome of checking a verification link.
type Verification struct {
	Valid     bool
	Reason    string // why not, in French, when not valid
	Number    string
	StoreName string
	Net       money.Amount
	IssuedAt  time.Time
	Period    [2]time.Time
}

// Verify checks a verification link against the invoice on record: the
// signature must be the server's, and the invoice's current digest, number
// and total must be those signed. A link that cannot be read fails with
// ErrMalformedLink; any other mismatch is an invalid Verification, not an
// error.
func (s *Service) Verify(ctx context.Context, link string) (Verification, error) {
	c, err := ParseClaim(link)
	if err != nil {
		return Verification{}, err
	}
	if _, err := s.Signer(ctx); err != nil {
		return Verification{}, err
	}
	s.mu.Lock()
	keys := s.keys
	s.mu.Unlock()
	if err := keys.Verify(c); err != nil {
		return Verification{Reason: "signature invalide : ce lien n'a pas été émis par Leadify"}, nil
	}
	// The link names a store the caller need not belong to: the lookup is
	// platform-wide, by the signed ids only.
	var r *Record
	err = postgres.InSnapshot(ctx, s.Pool, postgres.Scope{AllStores: true}, func(tx *postgres.Tx) error {
		var err error
		r, err = loadRecord(ctx, tx, c.Store, c.Invoice, false)
		return err
	})
	if errors.Is(err, postgres.ErrNotFound) {
		return Verification{Reason: "facture inconnue"}, nil
	}
	if err != nil {
		return Verification{}, err
	}
	v := Verification{Number: r.Invoice.NumberText(), StoreName: r.Invoice.StoreName, Net: r.Invoice.Totals.Net,
		IssuedAt: r.Invoice.IssuedAt, Period: [2]time.Time{r.Invoice.PeriodStart, r.Invoice.PeriodEnd}}
	d, err := r.Invoice.Digest()
	if err != nil {
		return Verification{}, err
	}
	switch {
	case d != c.Digest:
		v.Reason = "la facture enregistrée ne correspond plus à celle qui a été signée"
	case r.Invoice.Number != c.Number || r.Invoice.Totals.Net != c.Total:
		v.Reason = "le numéro ou le montant ne correspondent pas"
	default:
		v.Valid = true
	}
	return v, nil
}
