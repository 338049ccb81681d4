package billing

import (
	"bytes"
	_ "embed"
	"fmt"
	"image"
	_ "image/jpeg" // logos may be JPEG
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/boombuler/barcode"
	"github.com/boombuler/barcode/qr"
	"github.com/go-pdf/fpdf"

	"github.com/leadify/leadify/shared/city"
	"github.com/leadify/leadify/shared/commission"
	"github.com/leadify/leadify/shared/money"
)

// DejaVu Sans covers Latin and Arabic, presentation forms included (Bitstream
// Vera licence, see fonts/LICENSE).
var (
	//go:embed fonts/DejaVuSans.ttf
	fontRegular []byte
	//go:embed fonts/DejaVuSans-Bold.ttf
	fontBold []byte
)

// Label is a piece of fixed invoice text in French and Arabic.
type Label struct{ FR, AR string }

// The invoice's bilingual labels.
var (
	lblInvoice   = Label{"Facture", "فاتورة"}
	lblNumber    = Label{"Facture n°", "رقم الفاتورة"}
	lblIssued    = Label{"Date d'émission", "تاريخ الإصدار"}
	lblPeriod    = Label{"Période", "الفترة"}
	lblStatus    = Label{"Statut", "الحالة"}
	lblSeller    = Label{"Vendeur", "البائع"}
	lblSummary   = Label{"Récapitulatif", "ملخص"}
	lblCOD       = Label{"Montant encaissé", "المبلغ المحصل"}
	lblDelivery  = Label{"Frais de livraison", "مصاريف التوصيل"}
	lblCODFee    = Label{"Frais de contre-remboursement", "مصاريف الدفع عند الاستلام"}
	lblReturns   = Label{"Frais de retour", "مصاريف الإرجاع"}
	lblPlatform  = Label{"Frais de confirmation et plateforme (HT)", "عمولة التأكيد والمنصة"}
	lblVAT       = Label{"TVA", "الضريبة على القيمة المضافة"}
	lblNet       = Label{"Net à reverser", "الصافي المستحق"}
	lblParcels   = Label{"Colis traités", "الطرود المعالجة"}
	lblVerify    = Label{"Vérifier cette facture", "تحقق من هذه الفاتورة"}
	lblDetails   = Label{"Détail des colis", "تفاصيل الطرود"}
	lblPaid      = Label{"Déjà réglé", "المبلغ المدفوع"}
	tableHeaders = []string{"Réf.", "Date", "Ville", "Statut", "Encaissé", "Frais transport", "Frais plateforme", "Net"}
)

// Labels returns every bilingual label printed on an invoice with VAT.
func Labels() []Label {
	return []Label{lblInvoice, lblNumber, lblIssued, lblPeriod, lblStatus, lblSeller, lblSummary, lblCOD, lblDelivery,
		lblCODFee, lblReturns, lblPlatform, lblVAT, lblNet, lblParcels, lblVerify, lblDetails}
}

// TableHeaders returns the French column titles of the parcel table.
func TableHeaders() []string { return append([]string(nil), tableHeaders...) }

var statusFR = map[string]string{"delivered": "Livré", "refused": "Refusé", "returned": "Retourné",
	InvoiceDraft: "Brouillon", InvoiceIssued: "Émise", InvoicePartlyPaid: "Partiellement réglée", InvoicePaid: "Réglée"}

// Branding is how a store's invoices look.
type Branding struct {
	Logo     []byte // PNG or JPEG; ignored if it does not decode
	Primary  string // "#0F766E"
	Accent   string
	Language string // unused: invoices are French with Arabic labels
}

// Document is everything printed on an invoice PDF.
type Document struct {
	Invoice   *Invoice
	Branding  Branding
	Status    string
	Paid      money.Amount
	VerifyURL string // empty on a draft: no QR code
}

type rgb struct{ r, g, b int }

func parseColour(s string, def rgb) rgb {
	s = strings.TrimPrefix(strings.TrimSpace(s), "#")
	if len(s) != 6 {
		return def
	}
	v, err := strconv.ParseUint(s, 16, 32)
	if err != nil {
		return def
	}
	return rgb{int(v >> 16 & 0xff), int(v >> 8 & 0xff), int(v & 0xff)}
}

// tint mixes c with white: 0 is c, 1 is white.
func (c rgb) tint(w float64) rgb {
	m := func(x int) int { return x + int(float64(255-x)*w) }
	return rgb{m(c.r), m(c.g), m(c.b)}
}

const (
	pageW, pageH = 210.0, 297.0
	margin       = 14.0
	contentW     = pageW - 2*margin
	rowH         = 5.6
)

var colW = []float64{28, 19, 25, 18, 22, 25, 27, 18}

type renderer struct {
	pdf            *fpdf.Fpdf
	doc            Document
	primary, light rgb
	accent         rgb
}

// newPDF starts an A4 document of ours: its title, the embedded DejaVu
// faces (Latin, Arabic, Tifinagh), our margins, pages broken by hand.
func newPDF(title string) *fpdf.Fpdf {
	pdf := fpdf.New("P", "mm", "A4", "")
	pdf.SetCreator("Leadify", true)
	pdf.SetTitle(title, true)
	pdf.AddUTF8FontFromBytes("dejavu", "", fontRegular)
	pdf.AddUTF8FontFromBytes("dejavu", "B", fontBold)
	pdf.SetMargins(margin, margin, margin)
	pdf.SetAutoPageBreak(false, 0)
	return pdf
}

// RenderPDF writes the invoice as a PDF: the store's branding, bilingual
// labels (French, Arabic shaped and ordered right to left), a summary, a
// verification QR code, and one table row per parcel on as many pages as it
// takes. Fails if the QR code cannot be made or the PDF cannot be written.
func RenderPDF(w io.Writer, doc Document) error {
	pdf := newPDF(lblInvoice.FR + " " + doc.Invoice.NumberText() + " — " + doc.Invoice.StoreName)
	pdf.AliasNbPages("{nb}")
	r := &renderer{pdf: pdf, doc: doc}
	r.primary = parseColour(doc.Branding.Primary, rgb{0x0F, 0x76, 0x6E})
	r.accent = parseColour(doc.Branding.Accent, rgb{0xF5, 0x9E, 0x0B})
	r.light = r.primary.tint(0.92)
	pdf.SetFooterFunc(r.footer)

	pdf.AddPage()
	r.header()
	y := r.parties(50)
	y = r.summary(y + 6)
	r.table(y + 8)
	if err := pdf.Error(); err != nil {
		return fmt.Errorf("render invoice: %w", err)
	}
	return pdf.Output(w)
}

func (r *renderer) fill(c rgb) { r.pdf.SetFillColor(c.r, c.g, c.b) }
func (r *renderer) text(c rgb) { r.pdf.SetTextColor(c.r, c.g, c.b) }
func (r *renderer) draw(c rgb) { r.pdf.SetDrawColor(c.r, c.g, c.b) }
func (r *renderer) font(style string, size float64) {
	r.pdf.SetFont("dejavu", style, size)
}

// arabic writes s right-aligned so that it ends at x+w.
func (r *renderer) arabic(x, y, w, h float64, s string) {
	r.pdf.SetXY(x, y)
	r.pdf.CellFormat(w, h, Visual(s), "", 0, "R", false, 0, "")
}

var (
	white = rgb{255, 255, 255}
	ink   = rgb{0x1F, 0x29, 0x37}
	muted = rgb{0x6B, 0x72, 0x80}
	rule  = rgb{0xE5, 0xE7, 0xEB}
)

func (r *renderer) header() {
	p, inv := r.pdf, r.doc.Invoice
	r.fill(r.primary)
	p.Rect(0, 0, pageW, 40, "F")
	r.fill(r.accent)
	p.Rect(0, 40, pageW, 1.6, "F")
	x := margin
	if r.logo(margin, 9, 22) {
		x = margin + 27
	}
	r.text(white)
	r.font("B", 18)
	p.SetXY(x, 11)
	p.CellFormat(100, 9, inv.StoreName, "", 0, "L", false, 0, "")
	r.font("", 9)
	p.SetXY(x, 21)
	p.CellFormat(100, 5, inv.Party.LegalName, "", 0, "L", false, 0, "")
	if inv.Party.ICE != "" {
		p.SetXY(x, 26)
		p.CellFormat(100, 5, "ICE "+inv.Party.ICE, "", 0, "L", false, 0, "")
	}
	r.font("B", 22)
	p.SetXY(pageW-margin-80, 9)
	p.CellFormat(80, 10, strings.ToUpper(lblInvoice.FR), "", 0, "R", false, 0, "")
	r.font("", 13)
	r.arabic(pageW-margin-80, 19, 80, 7, lblInvoice.AR)
	r.font("B", 11)
	p.SetXY(pageW-margin-80, 27)
	p.CellFormat(80, 6, inv.NumberText(), "", 0, "R", false, 0, "")
}

// logo draws the store's logo in a white rounded tile, or its initial when
// there is no usable logo. It reports whether it drew anything.
func (r *renderer) logo(x, y, size float64) bool {
	p := r.pdf
	r.fill(white)
	p.RoundedRect(x, y, size, size, 2.5, "1234", "F")
	logo := r.doc.Branding.Logo
	if len(logo) > 0 {
		if cfg, format, err := image.DecodeConfig(bytes.NewReader(logo)); err == nil && cfg.Width > 0 && cfg.Height > 0 {
			typ := map[string]string{"png": "PNG", "jpeg": "JPG"}[format]
			if typ != "" {
				p.RegisterImageOptionsReader("logo", fpdf.ImageOptions{ImageType: typ}, bytes.NewReader(logo))
				w, h := size-4, (size-4)*float64(cfg.Height)/float64(cfg.Width)
				if h > size-4 {
					w, h = (size-4)*float64(cfg.Width)/float64(cfg.Height), size-4
				}
				p.ImageOptions("logo", x+(size-w)/2, y+(size-h)/2, w, h, false, fpdf.ImageOptions{ImageType: typ}, 0, "")
				return true
			}
		}
	}
	name := []rune(strings.TrimSpace(r.doc.Invoice.StoreName))
	if len(name) == 0 {
		return true
	}
	r.text(r.primary)
	r.font("B", 20)
	p.SetXY(x, y)
	p.CellFormat(size, size, strings.ToUpper(string(name[0])), "", 0, "C", false, 0, "")
	return true
}

func frDate(t time.Time) string { return t.Format("02/01/2006") }

// labelPair writes a French label on the left and its Arabic on the right of
// a w-wide cell, in muted ink.
func (r *renderer) labelPair(x, y, w, h float64, l Label, size float64) {
	r.pair(x, y, w, h, l.FR, l.AR, size, muted, muted)
}

// pair writes fr on the left and ar (shaped, right to left) on the right of
// a w-wide cell, shrinking the type until both fit side by side.
func (r *renderer) pair(x, y, w, h float64, fr, ar string, size float64, frInk, arInk rgb) {
	vis := Visual(ar)
	for ; size > 5; size -= 0.25 {
		r.font("", size)
		frW := r.pdf.GetStringWidth(fr)
		r.font("", size-0.5)
		if frW+r.pdf.GetStringWidth(vis)+4 <= w {
			break
		}
	}
	r.font("", size)
	r.text(frInk)
	r.pdf.SetXY(x, y)
	r.pdf.CellFormat(w, h, fr, "", 0, "L", false, 0, "")
	r.font("", size-0.5)
	r.text(arInk)
	r.pdf.SetXY(x, y)
	r.pdf.CellFormat(w, h, vis, "", 0, "R", false, 0, "")
}

// parties writes the seller block and the invoice facts; returns the y below.
func (r *renderer) parties(y float64) float64 {
	p, inv := r.pdf, r.doc.Invoice
	half := contentW/2 - 4
	r.labelPair(margin, y, half, 5, lblSeller, 8)
	r.draw(r.primary)
	p.SetLineWidth(0.4)
	p.Line(margin, y+6, margin+half, y+6)
	r.text(ink)
	r.font("B", 10)
	p.SetXY(margin, y+8)
	p.CellFormat(half, 5, inv.Party.LegalName, "", 1, "L", false, 0, "")
	r.font("", 8.5)
	var lines []string
	if inv.Party.Address != "" {
		lines = append(lines, inv.Party.Address)
	}
	var ids []string
	for _, kv := range [][2]string{{"ICE", inv.Party.ICE}, {"RC", inv.Party.RC}, {"IF", inv.Party.TaxID}} {
		if kv[1] != "" {
			ids = append(ids, kv[0]+" "+kv[1])
		}
	}
	if len(ids) > 0 {
		lines = append(lines, strings.Join(ids, " · "))
	}
	ly := y + 13.5
	for _, l := range lines {
		p.SetXY(margin, ly)
		p.CellFormat(half, 4.5, l, "", 0, "L", false, 0, "")
		ly += 4.5
	}

	x := margin + contentW/2 + 4
	period := frDate(inv.PeriodStart) + " – " + frDate(inv.PeriodEnd.AddDate(0, 0, -1))
	issued := "—"
	if !inv.IssuedAt.IsZero() {
		issued = frDate(inv.IssuedAt)
	}
	facts := []struct {
		l Label
		v string
	}{{lblNumber, inv.NumberText()}, {lblIssued, issued}, {lblPeriod, period}, {lblStatus, statusFR[r.doc.Status]}}
	fy := y
	for _, f := range facts {
		r.labelPair(x, fy, half-46, 5, f.l, 7.5)
		r.text(ink)
		r.font("B", 9)
		p.SetXY(x+half-46, fy)
		p.CellFormat(46, 5, f.v, "", 0, "R", false, 0, "")
		r.draw(rule)
		p.SetLineWidth(0.2)
		p.Line(x, fy+5.6, x+half, fy+5.6)
		fy += 6.4
	}
	return max(ly, fy) + 2
}

// summary writes the totals with the QR code beside them.
func (r *renderer) summary(y float64) float64 {
	p, t := r.pdf, r.doc.Invoice.Totals
	boxW := contentW - 46
	r.fill(r.light)
	p.RoundedRect(margin, y, contentW, 8, 2, "12", "F")
	r.text(r.primary)
	r.font("B", 10)
	p.SetXY(margin+4, y+1.5)
	p.CellFormat(boxW-8, 5, lblSummary.FR, "", 0, "L", false, 0, "")
	r.arabic(margin+4, y+1.5, boxW-8, 5, lblSummary.AR)
	rows := []struct {
		l    Label
		frX  string // appended to the French label
		v    money.Amount
		sign string
	}{
		{lblParcels, "", 0, ""},
		{lblCOD, "", t.COD, ""},
		{lblDelivery, "", t.DeliveryFees, "−"},
		{lblCODFee, "", t.CODFees, "−"},
		{lblReturns, "", t.ReturnFees, "−"},
		{lblPlatform, "", t.PlatformFees, "−"},
	}
	if t.VATRateBP > 0 {
		rows = append(rows, struct {
			l    Label
			frX  string
			v    money.Amount
			sign string
		}{lblVAT, " " + commission.FormatRate(t.VATRateBP), t.VAT, "−"})
	}
	ry := y + 10
	for _, row := range rows {
		r.pair(margin+4, ry, boxW-8-36, 5.5, row.l.FR+row.frX, row.l.AR, 8.5, ink, muted)
		r.text(ink)
		r.font("B", 9)
		val := row.sign + row.v.Format()
		if row.l == lblParcels {
			r.font("", 8)
			val = fmt.Sprintf("%d livrés · %d retours", t.Delivered, t.Returned)
		}
		p.SetXY(margin+boxW-40, ry)
		p.CellFormat(36, 5.5, val, "", 0, "R", false, 0, "")
		r.draw(rule)
		p.SetLineWidth(0.2)
		p.Line(margin+4, ry+5.8, margin+boxW-4, ry+5.8)
		ry += 6.3
	}
	// The net payable, in the accent band.
	ry += 1.5
	r.fill(r.primary)
	p.RoundedRect(margin, ry, boxW, 10, 2, "1234", "F")
	r.text(white)
	r.font("B", 11)
	p.SetXY(margin+4, ry+2.5)
	p.CellFormat(60, 5, lblNet.FR, "", 0, "L", false, 0, "")
	r.font("", 10)
	r.arabic(margin+4, ry+2.5, boxW-54, 5, lblNet.AR)
	r.font("B", 12)
	p.SetXY(margin+boxW-46, ry+2.5)
	p.CellFormat(42, 5, t.Net.Format(), "", 0, "R", false, 0, "")
	ry += 10
	if r.doc.Paid > 0 {
		ry += 1.5
		r.labelPair(margin+4, ry, boxW-52, 5, lblPaid, 8)
		r.text(ink)
		r.font("B", 9)
		p.SetXY(margin+boxW-46, ry)
		p.CellFormat(42, 5, r.doc.Paid.Format(), "", 0, "R", false, 0, "")
		ry += 6
	}
	r.qr(margin+contentW-42, y+11)
	return ry
}

// qr draws the verification QR code with its caption.
func (r *renderer) qr(x, y float64) {
	p := r.pdf
	if r.doc.VerifyURL == "" {
		r.font("", 7.5)
		r.text(muted)
		p.SetXY(x, y+15)
		p.MultiCell(44, 4, "Brouillon : pas encore vérifiable", "", "C", false)
		return
	}
	code, err := qr.Encode(r.doc.VerifyURL, qr.M, qr.Auto)
	if err != nil {
		p.SetError(fmt.Errorf("qr code: %w", err))
		return
	}
	r.draw(rule)
	p.SetLineWidth(0.3)
	p.RoundedRect(x, y, 42, 56, 2, "1234", "D")
	drawQR(p, code, x+2, y+2, 38)
	// The code is also a link: a click opens the verification page.
	p.LinkString(x+2, y+2, 38, 38, r.doc.VerifyURL)
	r.text(ink)
	r.font("B", 7.5)
	p.SetXY(x, y+42)
	p.CellFormat(42, 4, lblVerify.FR, "", 0, "C", false, 0, "")
	r.font("", 7.5)
	r.text(muted)
	p.SetXY(x, y+46.5)
	p.CellFormat(42, 4, Visual(lblVerify.AR), "", 0, "C", false, 0, "")
	r.font("", 6)
	p.SetXY(x, y+51)
	p.CellFormat(42, 3, "Signature ed25519", "", 0, "C", false, 0, "")
}

func (r *renderer) tableHeader(y float64) float64 {
	p := r.pdf
	r.fill(r.primary)
	r.text(white)
	r.font("B", 7)
	p.SetXY(margin, y)
	for i, h := range tableHeaders {
		align := "L"
		if i >= 4 {
			align = "R"
		}
		p.CellFormat(colW[i], 7, h, "", 0, align, true, 0, "")
	}
	return y + 7
}

func cityName(id string) string {
	if c, ok := city.ByID(id); ok {
		return c.Name
	}
	return id
}

// table writes one row per parcel, starting new pages as needed.
func (r *renderer) table(y float64) {
	p, inv := r.pdf, r.doc.Invoice
	r.text(r.primary)
	r.font("B", 10)
	p.SetXY(margin, y)
	p.CellFormat(contentW, 6, lblDetails.FR, "", 0, "L", false, 0, "")
	r.arabic(margin, y, contentW, 6, lblDetails.AR)
	y = r.tableHeader(y + 7)
	bottom := pageH - 20.0
	for i, l := range inv.Lines {
		if y+rowH > bottom {
			y = r.tableHeader(r.continuation())
		}
		if i%2 == 1 {
			r.fill(rgb{0xF9, 0xFA, 0xFB})
			p.Rect(margin, y, contentW, rowH, "F")
		}
		r.text(ink)
		r.font("", 7.5)
		cells := []string{l.Ref, frDate(l.Date), cityName(l.City), statusFR[l.Status], l.COD.Format(),
			"−" + l.CarrierFees.Format(), "−" + l.PlatformFee.Format(), l.Net.Format()}
		p.SetXY(margin, y)
		for c, s := range cells {
			align := "L"
			if c >= 4 {
				align = "R"
			}
			if c == 3 && l.Status != "delivered" {
				r.text(rgb{0xB9, 0x1C, 0x1C})
			}
			p.CellFormat(colW[c], rowH, strings.TrimSuffix(s, " MAD"), "", 0, align, false, 0, "")
			r.text(ink)
		}
		y += rowH
	}
	// Bank details and note under the table.
	if y+14 > bottom {
		y = r.continuation()
	}
	y += 4
	r.font("", 8)
	r.text(muted)
	if iban := inv.Party.BankIBAN; iban != "" {
		p.SetXY(margin, y)
		p.CellFormat(contentW, 4.5, "Virement sur le compte "+iban+" · montants en MAD", "", 0, "L", false, 0, "")
		y += 5
	}
	if note := inv.Party.FooterNote; note != "" {
		p.SetXY(margin, y)
		p.MultiCell(contentW, 4, note, "", "L", false)
	}
}

// continuation starts a new page with a slim branded band naming the
// invoice, and returns the y below it.
func (r *renderer) continuation() float64 {
	p, inv := r.pdf, r.doc.Invoice
	p.AddPage()
	r.fill(r.primary)
	p.Rect(0, 0, pageW, 9, "F")
	r.fill(r.accent)
	p.Rect(0, 9, pageW, 0.8, "F")
	r.text(white)
	r.font("B", 8.5)
	p.SetXY(margin, 2)
	p.CellFormat(contentW/2, 5, inv.StoreName, "", 0, "L", false, 0, "")
	r.font("", 8.5)
	p.SetXY(margin+contentW/2, 2)
	p.CellFormat(contentW/2, 5, lblInvoice.FR+" "+inv.NumberText()+" · "+lblDetails.FR+" (suite)", "", 0, "R", false, 0, "")
	return 15
}

func (r *renderer) footer() {
	p, inv := r.pdf, r.doc.Invoice
	r.draw(rule)
	p.SetLineWidth(0.3)
	p.Line(margin, pageH-14, pageW-margin, pageH-14)
	r.font("", 7)
	r.text(muted)
	p.SetXY(margin, pageH-12.5)
	p.CellFormat(contentW*0.75, 4, fmt.Sprintf("%s · %s · %s · émise par Leadify", inv.StoreName, inv.Party.LegalName, inv.NumberText()),
		"", 0, "L", false, 0, "")
	p.SetXY(margin, pageH-12.5)
	p.CellFormat(contentW, 4, fmt.Sprintf("Page %d/{nb}", p.PageNo()), "", 0, "R", false, 0, "")
}

// drawQR draws the code's dark modules as filled rectangles in a size × size
// square at (x, y): vectors stay sharp at any zoom, and cost neither a
// scaled bitmap nor its PNG encoding. Each run of dark modules on a row is
// one rectangle, overlapping the next row by a hair so that rasterisers
// leave no seams.
func drawQR(p *fpdf.Fpdf, code barcode.Barcode, x, y, size float64) {
	b := code.Bounds()
	n := b.Dx()
	if b.Dy() > n {
		n = b.Dy()
	}
	m := size / float64(n)
	p.SetFillColor(0, 0, 0)
	for row := b.Min.Y; row < b.Max.Y; row++ {
		for col := b.Min.X; col < b.Max.X; {
			if !dark(code, col, row) {
				col++
				continue
			}
			start := col
			for col < b.Max.X && dark(code, col, row) {
				col++
			}
			p.Rect(x+float64(start-b.Min.X)*m, y+float64(row-b.Min.Y)*m, float64(col-start)*m, m+0.02, "F")
		}
	}
}

func dark(code barcode.Barcode, x, y int) bool {
	r, _, _, _ := code.At(x, y).RGBA()
	return r < 0x8000
}
