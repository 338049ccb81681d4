package billing_test

import (
	"bytes"
	"crypto/ed25519"
	"image"
	"image/color"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"golang.org/x/text/unicode/norm"

	"github.com/leadify/leadify/shared/money"
	"github.com/leadify/leadify/syncserver/billing"
)

// sampleInvoice is an issued invoice of n parcels with VAT.
func sampleInvoice(t testing.TB, n int) *billing.Invoice {
	t.Helper()
	store := uuid.New()
	inv := &billing.Invoice{ID: uuid.New(), Store: store, Seller: uuid.New(), Number: 42, StoreName: "Argan Beauty",
		Party: billing.Party{LegalName: "Argan Beauty SARL", Address: "12 rue Ibn Batouta, Casablanca", ICE: "001234567000089",
			RC: "Casa 456789", TaxID: "40123456", BankIBAN: "MA64 0110 0000 0000 1234 5678 9012", VATRateBP: 2000, VATApplicable: true,
			FooterNote: "Merci pour votre confiance. Paiement à 15 jours."},
		PeriodStart: march, PeriodEnd: march.AddDate(0, 1, 0), IssuedAt: march.AddDate(0, 1, 1)}
	src := parcels(store, uuid.New(), n, 9)
	fees := map[uuid.UUID]money.Amount{}
	for _, p := range src {
		fees[p.ID] = 7_50
	}
	require.NoError(t, inv.Compute(src, fees))
	return inv
}

func testSigner(t testing.TB) (*billing.Signer, billing.PublicKeys) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(nil)
	require.NoError(t, err)
	return &billing.Signer{KeyID: "k1", Key: priv}, billing.PublicKeys{"k1": pub}
}

// logoPNG is a small two-colour logo.
func logoPNG(t testing.TB) []byte {
	img := image.NewRGBA(image.Rect(0, 0, 64, 64))
	for y := range 64 {
		for x := range 64 {
			c := color.RGBA{0x0F, 0x76, 0x6E, 0xFF}
			if (x-32)*(x-32)+(y-32)*(y-32) < 300 {
				c = color.RGBA{0xF5, 0x9E, 0x0B, 0xFF}
			}
			img.Set(x, y, c)
		}
	}
	var b bytes.Buffer
	require.NoError(t, png.Encode(&b, img))
	return b.Bytes()
}

func render(t testing.TB, inv *billing.Invoice, url string) []byte {
	t.Helper()
	var out bytes.Buffer
	err := billing.RenderPDF(&out, billing.Document{Invoice: inv, Status: billing.InvoiceIssued, VerifyURL: url,
		Branding: billing.Branding{Logo: logoPNG(t), Primary: "#0F766E", Accent: "#F59E0B"}})
	require.NoError(t, err)
	return out.Bytes()
}

func need(t *testing.T, tools ...string) {
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is required (Debian: poppler-utils, zbar-tools): %v", tool, err)
		}
	}
}

func reverseRunes(s string) string {
	r := []rune(s)
	for i, j := 0, len(r)-1; i < j; i, j = i+1, j-1 {
		r[i], r[j] = r[j], r[i]
	}
	return string(r)
}

// TestInvoicePDF reads the PDF back: every French and Arabic label is in the
// text, the QR code decodes from the rendered page to a link whose signature
// verifies, and a tampered invoice no longer matches it.
func TestInvoicePDF(t *testing.T) {
	t.Parallel()
	need(t, "pdftotext", "pdftoppm", "zbarimg")
	inv := sampleInvoice(t, 60)
	signer, keys := testSigner(t)
	claim, err := signer.Sign(inv)
	require.NoError(t, err)
	link := claim.URL("https://app.leadify.ma")
	pdf := render(t, inv, link)

	dir := t.TempDir()
	file := filepath.Join(dir, "invoice.pdf")
	require.NoError(t, os.WriteFile(file, pdf, 0o600))
	text, err := exec.Command("pdftotext", "-layout", file, "-").Output()
	require.NoError(t, err)
	got := norm.NFKC.String(string(text))
	for _, l := range billing.Labels() {
		require.Contains(t, got, l.FR)
		ar := norm.NFKC.String(l.AR)
		if !strings.Contains(got, ar) {
			// pdftotext may return right-to-left text in visual order.
			require.Contains(t, got, reverseRunes(ar), "Arabic label %q", l.AR)
		}
	}
	for _, h := range billing.TableHeaders() {
		require.Contains(t, got, h)
	}
	require.Contains(t, got, inv.Totals.Net.Format())
	require.Contains(t, got, "FA-000042")
	require.Contains(t, got, "Page 2/2")

	// Render page 1 and decode the QR code from the picture.
	out, err := exec.Command("pdftoppm", "-png", "-r", "110", "-f", "1", "-l", "1", file, filepath.Join(dir, "page")).CombinedOutput()
	require.NoError(t, err, string(out))
	pages, _ := filepath.Glob(filepath.Join(dir, "page*.png"))
	require.Len(t, pages, 1)
	if os.Getenv("LEADIFY_SAVE_INVOICE_PNG") != "" {
		b, err := os.ReadFile(pages[0])
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(os.Getenv("LEADIFY_SAVE_INVOICE_PNG"), b, 0o644))
	}
	decoded, err := exec.Command("zbarimg", "--quiet", "--raw", pages[0]).Output()
	require.NoError(t, err)
	scanned := strings.TrimSpace(string(decoded))
	require.Equal(t, link, scanned)

	c, err := billing.ParseClaim(scanned)
	require.NoError(t, err)
	require.NoError(t, keys.Verify(c))
	d, err := inv.Digest()
	require.NoError(t, err)
	require.Equal(t, d, c.Digest, "the QR names this invoice's digest")

	// Tampering: the invoice on record changed, or the link's total edited.
	inv.Lines[3].COD += 100_00
	d2, err := inv.Digest()
	require.NoError(t, err)
	require.NotEqual(t, c.Digest, d2)
	forged := c
	forged.Total += 1000_00
	require.ErrorIs(t, keys.Verify(forged), billing.ErrBadSignature)
	_, otherKeys := testSigner(t)
	require.ErrorIs(t, otherKeys.Verify(c), billing.ErrBadSignature)
}

func TestComputeTotals(t *testing.T) {
	t.Parallel()
	inv := sampleInvoice(t, 200)
	tt := inv.Totals
	var cod, net money.Amount
	for _, l := range inv.Lines {
		cod += l.COD
		net += l.Net
	}
	require.Equal(t, cod, tt.COD)
	vat, err := tt.PlatformFees.MulRate(2000)
	require.NoError(t, err)
	require.Equal(t, vat, tt.VAT)
	require.Equal(t, net-vat, tt.Net, "lines and totals agree to the centime")
	require.Equal(t, tt.Parcels, tt.Delivered+tt.Returned)

	src := parcels(inv.Store, uuid.New(), 3, 1)
	require.ErrorIs(t, inv.Compute(append(src, src[0]), nil), billing.ErrDuplicateParcel)
	src[1].COD = 1 << 62
	src[2].COD = 1 << 62
	src[0].COD = 1 << 62
	for i := range src {
		src[i].Status = 7 // delivered
	}
	require.ErrorIs(t, inv.Compute(src, nil), money.ErrOverflow)
}

// TestRenderDraft: a draft has no number and no QR code, and still renders.
func TestRenderDraft(t *testing.T) {
	t.Parallel()
	inv := sampleInvoice(t, 3)
	inv.Number, inv.IssuedAt = 0, time.Time{}
	var out bytes.Buffer
	require.NoError(t, billing.RenderPDF(&out, billing.Document{Invoice: inv, Status: billing.InvoiceDraft,
		Branding: billing.Branding{Logo: []byte("not an image")}}))
	require.True(t, bytes.HasPrefix(out.Bytes(), []byte("%PDF-")))
}
