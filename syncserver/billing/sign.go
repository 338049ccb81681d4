package billing

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/google/uuid"

	"github.com/leadify/leadify/shared/invoiceseal"
	"github.com/leadify/leadify/shared/money"
)

// VerifyPath is the path of the public verification page; the QR code on
// every invoice links to it.
const VerifyPath = "/verify/invoice"

// ErrBadSignature is returned when a verification link's signature does not
// match, or its digest does not match the invoice on record.
var ErrBadSignature = errors.New("invoice signature does not verify")

// ErrMalformedLink is returned for a verification link that cannot be read.
var ErrMalformedLink = errors.New("malformed invoice verification link")

// Claim is what an invoice's QR code asserts: this invoice of this store,
// with this number and total, has this digest — signed by the server's key.
type Claim struct {
	Store     uuid.UUID
	Invoice   uuid.UUID
	Number    int64
	Total     money.Amount
	Digest    [32]byte
	KeyID     string
	Signature []byte
}

// message is the byte string signed: every field of the claim but the
// signature, unambiguously delimited.
func (c *Claim) message() []byte {
	return fmt.Appendf(nil, "leadify-invoice-v1\n%s\n%s\n%d\n%d\n%x\n%s", c.Store, c.Invoice, c.Number, c.Total, c.Digest, c.KeyID)
}

// Signer signs invoices with an ed25519 key.
type Signer struct {
	KeyID string
	Key   ed25519.PrivateKey
}

// Sign returns the claim for an issued invoice. It fails if the invoice has
// no number or cannot be encoded.
func (s *Signer) Sign(inv *Invoice) (Claim, error) {
	if inv.Number == 0 {
		return Claim{}, errors.New("sign invoice: a draft has no number")
	}
	d, err := inv.Digest()
	if err != nil {
		return Claim{}, err
	}
	c := Claim{Store: inv.Store, Invoice: inv.ID, Number: inv.Number, Total: inv.Totals.Net, Digest: d, KeyID: s.KeyID}
	c.Signature = ed25519.Sign(s.Key, c.message())
	return c, nil
}

// PublicKeys are the verification keys by id.
type PublicKeys map[string]ed25519.PublicKey

// Verify checks the claim's signature. Fails with ErrBadSignature.
func (k PublicKeys) Verify(c Claim) error {
	pub, ok := k[c.KeyID]
	if !ok {
		return fmt.Errorf("%w: unknown key %q", ErrBadSignature, c.KeyID)
	}
	if !ed25519.Verify(pub, c.message(), c.Signature) {
		return ErrBadSignature
	}
	return nil
}

var b64 = base64.RawURLEncoding

// URL returns the verification link for the claim under base
// ("https://app.leadify.ma").
func (c Claim) URL(base string) string {
	q := url.Values{}
	q.Set("s", c.Store.String())
	q.Set("i", c.Invoice.String())
	q.Set("n", strconv.FormatInt(c.Number, 10))
	q.Set("t", strconv.FormatInt(int64(c.Total), 10))
	q.Set("d", b64.EncodeToString(c.Digest[:]))
	q.Set("k", c.KeyID)
	q.Set("sig", b64.EncodeToString(c.Signature))
	return strings.TrimRight(base, "/") + VerifyPath + "?" + q.Encode()
}

// ParseClaim reads a verification link (or its query string). It fails with
// ErrMalformedLink, wrapped with the field at fault.
func ParseClaim(link string) (Claim, error) {
	raw := link
	if i := strings.IndexByte(link, '?'); i >= 0 {
		raw = link[i+1:]
	}
	q, err := url.ParseQuery(raw)
	if err != nil {
		return Claim{}, fmt.Errorf("%w: %w", ErrMalformedLink, err)
	}
	var c Claim
	bad := func(f string) (Claim, error) { return Claim{}, fmt.Errorf("%w: field %s", ErrMalformedLink, f) }
	if c.Store, err = uuid.Parse(q.Get("s")); err != nil {
		return bad("s")
	}
	if c.Invoice, err = uuid.Parse(q.Get("i")); err != nil {
		return bad("i")
	}
	if c.Number, err = strconv.ParseInt(q.Get("n"), 10, 64); err != nil || c.Number <= 0 {
		return bad("n")
	}
	total, err := strconv.ParseInt(q.Get("t"), 10, 64)
	if err != nil {
		return bad("t")
	}
	c.Total = money.Amount(total)
	d, err := b64.DecodeString(q.Get("d"))
	if err != nil || len(d) != sha256.Size {
		return bad("d")
	}
	copy(c.Digest[:], d)
	if c.KeyID = q.Get("k"); c.KeyID == "" || len(c.KeyID) > 64 {
		return bad("k")
	}
	if c.Signature, err = b64.DecodeString(q.Get("sig")); err != nil || len(c.Signature) != ed25519.SignatureSize {
		return bad("sig")
	}
	return c, nil
}

// SealPDF appends the server's seal to an issued invoice's rendered PDF: a
// signature over the PDF's bytes, the figures the invoice's replicated row
// shows and the claim's digest, which replicas check offline
// (shared/invoiceseal).
func (s *Signer) SealPDF(pdf []byte, inv *Invoice, c Claim) ([]byte, error) {
	t := inv.Totals
	return invoiceseal.Append(pdf, invoiceseal.Seal{Store: inv.Store, Invoice: inv.ID, Number: inv.Number,
		PeriodStart: inv.PeriodStart, PeriodEnd: inv.PeriodEnd, IssuedAt: inv.IssuedAt,
		COD: int64(t.COD), DeliveryFees: int64(t.DeliveryFees), CODFees: int64(t.CODFees), ReturnFees: int64(t.ReturnFees),
		PlatformFees: int64(t.PlatformFees), VATRateBP: t.VATRateBP, VAT: int64(t.VAT), Net: int64(t.Net),
		Lines: len(inv.Lines), Digest: c.Digest}, s.KeyID, s.Key)
}
