package localstore

import (
	"context"
	"crypto/ed25519"
	"database/sql"
	"errors"
	"fmt"
	"time"

	leadifyv1 "github.com/leadify/leadify/proto/gen/leadify/v1"
	"github.com/leadify/leadify/shared/invoiceseal"
)

// ErrNoInvoice is returned for an invoice the replica does not hold.
var ErrNoInvoice = errors.New("invoice not found on this device (sync once online)")

// ErrUnknownInvoiceKey is returned when an invoice is sealed with a key this
// device has not fetched yet: fetch the server's keys once online
// (SaveInvoiceKeys) and check again.
var ErrUnknownInvoiceKey = errors.New("this invoice's signing key is not on this device yet (connect once to fetch it)")

const (
	upsertInvoiceSQL = `INSERT OR REPLACE INTO invoices (id, store_id, version, number, status, period_start, period_end,
  issued_at, cod, delivery_fees, cod_fees, return_fees, platform_fees, vat_rate_bp, vat, net, paid, line_count, pdf)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	upsertEntrySQL = `INSERT OR REPLACE INTO commission_entries (id, store_id, version, rule_id, rule_name, parcel_id, kind,
  beneficiary, agent_id, status, base, amount, calculation, occurred_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
)

// moneyChange applies a pulled invoice or commission entry; handled is false
// for any other table. store is the scope the change came in.
func moneyChange(ctx context.Context, tx *sql.Tx, store string, ch *leadifyv1.Change) (handled bool, err error) {
	switch ch.Table {
	case "invoices":
		if ch.Deleted {
			_, err = tx.ExecContext(ctx, `DELETE FROM invoices WHERE id = ?`, ch.Id)
			return true, err
		}
		inv := ch.GetInvoice()
		if inv == nil {
			return true, errors.New("an invoice change without its row")
		}
		if inv.StoreId != "" {
			store = inv.StoreId
		}
		pdf := inv.Pdf
		if pdf == nil {
			pdf = []byte{}
		}
		_, err = tx.ExecContext(ctx, upsertInvoiceSQL, inv.Id, store, ch.Version, inv.Number, inv.Status,
			pbMicros(inv.PeriodStart), pbMicros(inv.PeriodEnd), pbMicros(inv.IssuedAt), inv.Cod, inv.DeliveryFees, inv.CodFees,
			inv.ReturnFees, inv.PlatformFees, inv.VatRateBp, inv.Vat, inv.Net, inv.Paid, inv.LineCount, pdf)
		return true, err
	case "commission_entries":
		if ch.Deleted {
			_, err = tx.ExecContext(ctx, `DELETE FROM commission_entries WHERE id = ?`, ch.Id)
			return true, err
		}
		e := ch.GetCommissionEntry()
		if e == nil {
			return true, errors.New("a commission entry change without its row")
		}
		_, err = tx.ExecContext(ctx, upsertEntrySQL, e.Id, store, ch.Version, e.RuleId, e.RuleName, e.ParcelId, e.Kind,
			e.Beneficiary, e.AgentId, e.Status, e.Base, e.Amount, e.Calculation, pbMicros(e.OccurredAt))
		return true, err
	}
	return false, nil
}

// Invoice is an invoice as the replica holds it (without its PDF).
type Invoice struct {
	ID, StoreID, Number, Status                                               string
	PeriodStart, PeriodEnd, IssuedAt                                          time.Time
	COD, DeliveryFees, CODFees, ReturnFees, PlatformFees, VATRateBP, VAT, Net int64
	Paid                                                                      int64
	Lines                                                                     int
}

const invoiceColumns = `id, store_id, number, status, period_start, period_end, issued_at, cod, delivery_fees, cod_fees,
  return_fees, platform_fees, vat_rate_bp, vat, net, paid, line_count`

func scanInvoice(row interface{ Scan(...any) error }, inv *Invoice, extra ...any) error {
	var start, end, issued int64
	dst := append([]any{&inv.ID, &inv.StoreID, &inv.Number, &inv.Status, &start, &end, &issued, &inv.COD, &inv.DeliveryFees,
		&inv.CODFees, &inv.ReturnFees, &inv.PlatformFees, &inv.VATRateBP, &inv.VAT, &inv.Net, &inv.Paid, &inv.Lines}, extra...)
	if err := row.Scan(dst...); err != nil {
		return err
	}
	inv.PeriodStart, inv.PeriodEnd, inv.IssuedAt = fromMicros(start), fromMicros(end), fromMicros(issued)
	return nil
}

// Invoices lists the store's invoices held by the replica, newest period first.
func (db *DB) Invoices(ctx context.Context, store string) ([]Invoice, error) {
	rows, err := db.sql.QueryContext(ctx, `SELECT `+invoiceColumns+` FROM invoices WHERE store_id = ?
ORDER BY period_start DESC, number DESC`, store)
	if err != nil {
		return nil, fmt.Errorf("list invoices: %w", err)
	}
	defer rows.Close()
	var out []Invoice
	for rows.Next() {
		var inv Invoice
		if err := scanInvoice(rows, &inv); err != nil {
			return nil, fmt.Errorf("list invoices: %w", err)
		}
		out = append(out, inv)
	}
	return out, rows.Err()
}

// InvoicePDF returns the invoice's PDF as replicated (sealed when issued).
func (db *DB) InvoicePDF(ctx context.Context, id string) ([]byte, error) {
	var pdf []byte
	err := db.sql.QueryRowContext(ctx, `SELECT pdf FROM invoices WHERE id = ?`, id).Scan(&pdf)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNoInvoice
	}
	return pdf, err
}

// SaveInvoiceKeys stores the server's invoice public keys (by id) for offline
// checks. Keys are only ever added or refreshed, never forgotten: old
// invoices stay checkable after the server rotates its key.
func (db *DB) SaveInvoiceKeys(ctx context.Context, keys map[string][]byte) error {
	return db.inTx(ctx, func(tx *sql.Tx) error {
		for id, pub := range keys {
			if len(pub) != ed25519.PublicKeySize {
				return fmt.Errorf("invoice key %q: %d bytes, want %d", id, len(pub), ed25519.PublicKeySize)
			}
			if _, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO invoice_keys (id, public_key, fetched_at) VALUES (?, ?, ?)`,
				id, pub, db.now().UnixMicro()); err != nil {
				return fmt.Errorf("save invoice key: %w", err)
			}
		}
		return nil
	})
}

// InvoiceKeys returns the cached invoice public keys.
func (db *DB) InvoiceKeys(ctx context.Context) (invoiceseal.Keys, error) {
	rows, err := db.sql.QueryContext(ctx, `SELECT id, public_key FROM invoice_keys`)
	if err != nil {
		return nil, fmt.Errorf("invoice keys: %w", err)
	}
	defer rows.Close()
	keys := invoiceseal.Keys{}
	for rows.Next() {
		var id string
		var pub []byte
		if err := rows.Scan(&id, &pub); err != nil {
			return nil, fmt.Errorf("invoice keys: %w", err)
		}
		keys[id] = ed25519.PublicKey(pub)
	}
	return keys, rows.Err()
}

// InvoiceCheck is the outcome of checking an invoice offline.
type InvoiceCheck struct {
	Invoice Invoice
	Valid   bool
	// Reason says why not, in French, when not Valid.
	Reason string
	// KeyID names the server key that sealed it.
	KeyID string
}

// VerifyInvoice checks a replicated invoice without the network: its PDF
// must carry the server's seal under a cached key, be byte for byte the PDF
// sealed, and the figures the row shows (number, period, issue date, totals,
// line count) must be the sealed ones. A draft, an altered PDF or an altered
// row is an invalid InvoiceCheck; it fails with ErrNoInvoice, with
// ErrUnknownInvoiceKey when the sealing key was never fetched, or on a
// database error.
func (db *DB) VerifyInvoice(ctx context.Context, id string) (InvoiceCheck, error) {
	var c InvoiceCheck
	var pdf []byte
	err := scanInvoice(db.sql.QueryRowContext(ctx, `SELECT `+invoiceColumns+`, pdf FROM invoices WHERE id = ?`, id), &c.Invoice, &pdf)
	if errors.Is(err, sql.ErrNoRows) {
		return c, ErrNoInvoice
	}
	if err != nil {
		return c, fmt.Errorf("load invoice: %w", err)
	}
	if c.Invoice.Status == "draft" {
		c.Reason = "brouillon : une facture n'est scellée qu'une fois émise"
		return c, nil
	}
	keys, err := db.InvoiceKeys(ctx)
	if err != nil {
		return c, err
	}
	if _, s, err := invoiceseal.Split(pdf); err == nil {
		c.KeyID = s.KeyID
		if _, ok := keys[s.KeyID]; !ok {
			return c, ErrUnknownInvoiceKey
		}
	}
	s, err := keys.Verify(pdf)
	switch {
	case errors.Is(err, invoiceseal.ErrNoSeal):
		c.Reason = "le PDF ne porte pas le sceau du serveur"
		return c, nil
	case errors.Is(err, invoiceseal.ErrMalformed):
		c.Reason = "le sceau du PDF est illisible"
		return c, nil
	case err != nil:
		c.Reason = "le PDF a été modifié depuis son émission, ou n'a pas été scellé par Leadify"
		return c, nil
	}
	if reason := sealMismatch(&c.Invoice, &s); reason != "" {
		c.Reason = reason
		return c, nil
	}
	c.Valid = true
	return c, nil
}

// sealMismatch names the first figure of the row that is not the sealed one.
func sealMismatch(inv *Invoice, s *invoiceseal.Seal) string {
	switch {
	case inv.ID != s.Invoice.String() || inv.StoreID != s.Store.String():
		return "cette facture n'est pas celle que le sceau désigne"
	case inv.Number != fmt.Sprintf("FA-%06d", s.Number):
		return "le numéro de la facture ne correspond pas au sceau"
	case !inv.PeriodStart.Equal(s.PeriodStart) || !inv.PeriodEnd.Equal(s.PeriodEnd) || !inv.IssuedAt.Equal(s.IssuedAt):
		return "la période ou la date d'émission ne correspondent pas au sceau"
	case inv.COD != s.COD || inv.DeliveryFees != s.DeliveryFees || inv.CODFees != s.CODFees || inv.ReturnFees != s.ReturnFees ||
		inv.PlatformFees != s.PlatformFees || inv.VATRateBP != s.VATRateBP || inv.VAT != s.VAT || inv.Net != s.Net:
		return "les montants de la facture ne correspondent pas au sceau"
	case inv.Lines != s.Lines:
		return "le nombre de lignes ne correspond pas au sceau"
	}
	return ""
}
