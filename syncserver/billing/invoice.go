package billing

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/leadify/leadify/shared/money"
	"github.com/leadify/leadify/shared/parcel"
)

// Invoice statuses.
const (
	InvoiceDraft      = "draft"
	InvoiceIssued     = "issued"
	InvoicePartlyPaid = "partly_paid"
	InvoicePaid       = "paid"
)

// Party is the seller's legal identity as printed on the invoice (from the
// store's invoice settings).
type Party struct {
	LegalName     string `json:"legalName"`
	Address       string `json:"address,omitempty"`
	ICE           string `json:"ice,omitempty"`
	RC            string `json:"rc,omitempty"`
	TaxID         string `json:"taxId,omitempty"`
	BankIBAN      string `json:"bankIban,omitempty"`
	VATRateBP     int64  `json:"vatRateBp,omitempty"`
	VATApplicable bool   `json:"vatApplicable,omitempty"`
	FooterNote    string `json:"footerNote,omitempty"`
}

// Line is one parcel on an invoice.
type Line struct {
	ParcelID    uuid.UUID    `json:"parcelId"`
	Ref         string       `json:"ref"`
	Date        time.Time    `json:"date"`
	City        string       `json:"city"`
	Status      string       `json:"status"` // delivered, refused or returned
	COD         money.Amount `json:"cod"`    // collected: 0 unless delivered
	CarrierFees money.Amount `json:"carrierFees"`
	PlatformFee money.Amount `json:"platformFee"`
	Net         money.Amount `json:"net"`
}

// Totals sum an invoice. Net = COD − DeliveryFees − CODFees − ReturnFees −
// PlatformFees − VAT: what the seller is paid for the period.
type Totals struct {
	Parcels      int          `json:"parcels"`
	Delivered    int          `json:"delivered"`
	Returned     int          `json:"returned"`
	COD          money.Amount `json:"cod"`
	DeliveryFees money.Amount `json:"deliveryFees"`
	CODFees      money.Amount `json:"codFees"`
	ReturnFees   money.Amount `json:"returnFees"`
	PlatformFees money.Amount `json:"platformFees"` // confirmation and platform fees, before VAT
	VATRateBP    int64        `json:"vatRateBp"`
	VAT          money.Amount `json:"vat"` // on PlatformFees
	Net          money.Amount `json:"net"`
}

// Invoice is a store's invoice for one period. Its JSON form (the body
// column) is canonical: its SHA-256 is the digest the server signs.
type Invoice struct {
	ID          uuid.UUID `json:"id"`
	Store       uuid.UUID `json:"store"`
	Seller      uuid.UUID `json:"seller"`
	Number      int64     `json:"number,omitempty"` // 0 while draft
	StoreName   string    `json:"storeName"`
	Party       Party     `json:"party"`
	PeriodStart time.Time `json:"periodStart"`
	PeriodEnd   time.Time `json:"periodEnd"` // exclusive
	IssuedAt    time.Time `json:"issuedAt,omitzero"`
	Lines       []Line    `json:"lines"`
	Totals      Totals    `json:"totals"`
}

// NumberText is the printed invoice number: "FA-000042".
func (inv *Invoice) NumberText() string {
	if inv.Number == 0 {
		return "BROUILLON"
	}
	return fmt.Sprintf("FA-%06d", inv.Number)
}

// Digest is the SHA-256 of the invoice's canonical JSON.
func (inv *Invoice) Digest() ([32]byte, error) {
	b, err := json.Marshal(inv)
	if err != nil {
		return [32]byte{}, fmt.Errorf("encode invoice: %w", err)
	}
	return sha256.Sum256(b), nil
}

// sum accumulates amounts and keeps the first overflow.
type sum struct{ err error }

func (s *sum) add(dst *money.Amount, a money.Amount) {
	if s.err != nil {
		return
	}
	v, err := dst.Add(a)
	if err != nil {
		s.err = err
		return
	}
	*dst = v
}

func (s *sum) sub(dst *money.Amount, a money.Amount) {
	if s.err != nil {
		return
	}
	v, err := dst.Sub(a)
	if err != nil {
		s.err = err
		return
	}
	*dst = v
}

// ErrDuplicateParcel is returned when a parcel is reported twice for one
// invoice (a carrier that reported it delivered twice).
var ErrDuplicateParcel = errors.New("parcel reported twice")

// Compute builds the invoice's lines and totals from the period's parcels
// (delivered, refused or returned; others are ignored) and the platform fees
// charged per parcel (net of reversals). A parcel given twice fails with
// ErrDuplicateParcel; an overflowing sum with money.ErrOverflow — never a
// wrong total.
func (inv *Invoice) Compute(parcels []DeliveredParcel, fees map[uuid.UUID]money.Amount) error {
	var s sum
	t := Totals{}
	if inv.Party.VATApplicable {
		t.VATRateBP = inv.Party.VATRateBP
	}
	seen := make(map[uuid.UUID]bool, len(parcels))
	inv.Lines = inv.Lines[:0]
	for _, p := range parcels {
		var status string
		switch p.Status {
		case parcel.StatusDelivered:
			status = "delivered"
		case parcel.StatusRefused:
			status = "refused"
		case parcel.StatusReturned:
			status = "returned"
		default:
			continue
		}
		if seen[p.ID] {
			return fmt.Errorf("%w: %v (%s)", ErrDuplicateParcel, p.ID, p.Ref)
		}
		seen[p.ID] = true
		l := Line{ParcelID: p.ID, Ref: p.Ref, Date: p.DeliveredAt, City: p.City, Status: status, PlatformFee: fees[p.ID]}
		t.Parcels++
		if status == "delivered" {
			t.Delivered++
			l.COD = p.COD
			s.add(&t.COD, p.COD)
			s.add(&t.DeliveryFees, p.DeliveryFee)
			s.add(&t.CODFees, p.CODFee)
			s.add(&l.CarrierFees, p.DeliveryFee)
			s.add(&l.CarrierFees, p.CODFee)
		} else {
			t.Returned++
			s.add(&t.ReturnFees, p.ReturnFee)
			s.add(&l.CarrierFees, p.ReturnFee)
		}
		s.add(&t.PlatformFees, l.PlatformFee)
		s.add(&l.Net, l.COD)
		s.sub(&l.Net, l.CarrierFees)
		s.sub(&l.Net, l.PlatformFee)
		inv.Lines = append(inv.Lines, l)
	}
	if s.err != nil {
		return s.err
	}
	vat, err := t.PlatformFees.MulRate(t.VATRateBP)
	if err != nil {
		return err
	}
	t.VAT = vat
	t.Net = t.COD
	for _, a := range []money.Amount{t.DeliveryFees, t.CODFees, t.ReturnFees, t.PlatformFees, t.VAT} {
		s.sub(&t.Net, a)
	}
	if s.err != nil {
		return s.err
	}
	inv.Totals = t
	return nil
}
