package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/leadify/leadify/desktop/localstore"
	"github.com/leadify/leadify/shared/invoiceseal"
)

// Invoice is one of a store's invoices as the UI shows it, from the replica
// (so it opens offline). Amounts are centimes; times RFC 3339.
type Invoice struct {
	ID           string `json:"id"`
	StoreID      string `json:"storeId"`
	Number       string `json:"number"` // "FA-000042", or "" for a draft
	Status       string `json:"status"` // draft, issued, partly_paid, paid
	PeriodStart  string `json:"periodStart"`
	PeriodEnd    string `json:"periodEnd"` // exclusive
	IssuedAt     string `json:"issuedAt"`
	COD          int64  `json:"cod"`
	CarrierFees  int64  `json:"carrierFees"`
	PlatformFees int64  `json:"platformFees"`
	VAT          int64  `json:"vat"`
	Net          int64  `json:"net"`
	Paid         int64  `json:"paid"`
	Lines        int    `json:"lines"`
}

// InvoiceCheck is the outcome of checking an invoice's seal on this device.
type InvoiceCheck struct {
	Valid bool `json:"valid"`
	// Reason says why not (in French) when not Valid.
	Reason string `json:"reason"`
	Number string `json:"number"`
	Net    int64  `json:"net"`
	// KeyID names the server key that sealed the invoice.
	KeyID string `json:"keyId"`
}

func rfc3339(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

func invoiceOf(inv localstore.Invoice) Invoice {
	return Invoice{ID: inv.ID, StoreID: inv.StoreID, Number: inv.Number, Status: inv.Status,
		PeriodStart: rfc3339(inv.PeriodStart), PeriodEnd: rfc3339(inv.PeriodEnd), IssuedAt: rfc3339(inv.IssuedAt),
		COD: inv.COD, CarrierFees: inv.DeliveryFees + inv.CODFees + inv.ReturnFees, PlatformFees: inv.PlatformFees,
		VAT: inv.VAT, Net: inv.Net, Paid: inv.Paid, Lines: inv.Lines}
}

// Invoices lists a store's invoices held by this device, newest first; it
// works offline.
func (s *Stores) Invoices(storeID string) ([]Invoice, error) {
	ctx, db, err := s.core.database()
	if err != nil {
		return nil, err
	}
	rows, err := db.Invoices(ctx, storeID)
	if err != nil {
		return nil, err
	}
	out := make([]Invoice, len(rows))
	for i, r := range rows {
		out[i] = invoiceOf(r)
	}
	return out, nil
}

// InvoicePDF returns an invoice's PDF (sealed once issued) as this device
// holds it.
func (s *Stores) InvoicePDF(id string) ([]byte, error) {
	ctx, db, err := s.core.database()
	if err != nil {
		return nil, err
	}
	return db.InvoicePDF(ctx, id)
}

// VerifyInvoice checks, on this device and without the network, that an
// invoice's PDF carries the server's seal, is byte for byte the one the
// server issued, and that the figures shown are the sealed ones. The server's
// public keys are kept on the device: the first time a key is met, and only
// then, they are fetched from the server (so that check needs to be online
// once). A tampered or unsealed invoice is a check with Valid false and the
// reason; it fails for an unknown invoice, or a key never fetched while the
// server cannot be reached.
func (s *Stores) VerifyInvoice(id string) (InvoiceCheck, error) {
	ctx, db, err := s.core.database()
	if err != nil {
		return InvoiceCheck{}, err
	}
	c, err := db.VerifyInvoice(ctx, id)
	if errors.Is(err, localstore.ErrUnknownInvoiceKey) {
		if ferr := s.RefreshInvoiceKeys(); ferr != nil {
			return InvoiceCheck{}, fmt.Errorf("%w: %w", err, ferr)
		}
		c, err = db.VerifyInvoice(ctx, id)
	}
	if err != nil {
		return InvoiceCheck{}, err
	}
	return InvoiceCheck{Valid: c.Valid, Reason: c.Reason, Number: c.Invoice.Number, Net: c.Invoice.Net, KeyID: c.KeyID}, nil
}

// maxKeysBody bounds the key list read from the server.
const maxKeysBody = 64 << 10

// RefreshInvoiceKeys fetches the server's invoice public keys and keeps them
// on this device for offline checks. Fails with ErrNotSignedIn, or when the
// server cannot be reached or answers something else than a key list.
func (s *Stores) RefreshInvoiceKeys() error {
	si, err := s.core.session()
	if err != nil {
		return err
	}
	keys, err := fetchInvoiceKeys(si.ctx, si.client.BaseURL(), s.core.opts.Timeout)
	if err != nil {
		return err
	}
	return si.db.SaveInvoiceKeys(si.ctx, keys)
}

// fetchInvoiceKeys GETs the key list at base + invoiceseal.KeysPath.
func fetchInvoiceKeys(ctx context.Context, base string, timeout time.Duration) (map[string][]byte, error) {
	if timeout <= 0 {
		timeout = 15 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(base, "/")+invoiceseal.KeysPath, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch the server's invoice keys: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch the server's invoice keys: %s", resp.Status)
	}
	var list invoiceseal.KeyList
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxKeysBody)).Decode(&list); err != nil {
		return nil, fmt.Errorf("read the server's invoice keys: %w", err)
	}
	keys := make(map[string][]byte, len(list.Keys))
	for _, k := range list.Keys {
		keys[k.ID] = k.PublicKey
	}
	return keys, nil
}
