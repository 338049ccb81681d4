package billing

import (
	"bytes"
	"fmt"
	"sort"
	"time"

	"github.com/leadify/leadify/shared/money"
)

// The seller statement's bilingual labels.
var (
	lblStatement = Label{"Relevé de compte vendeur", "كشف حساب البائع"}
	lblOpening   = Label{"Solde d'ouverture", "الرصيد الافتتاحي"}
	lblInvoiced  = Label{"Factures émises", "الفواتير الصادرة"}
	lblPayments  = Label{"Règlements reçus", "المدفوعات المستلمة"}
	lblClosing   = Label{"Solde de clôture", "الرصيد الختامي"}
	lblAllStores = Label{"Total de toutes les boutiques", "مجموع كل المتاجر"}
)

// StatementLabels returns every bilingual label printed on a seller statement.
func StatementLabels() []Label {
	return []Label{lblStatement, lblPeriod, lblOpening, lblInvoiced, lblPayments, lblClosing, lblAllStores}
}

// statementRow is one dated movement of a store's account.
type statementRow struct {
	at     time.Time
	label  string
	amount money.Amount
}

// RenderSellerStatement prints a seller statement as a PDF: per store, the
// opening balance, every invoice and payment of the period in date order and
// the closing balance; then the totals of all stores. French, with Arabic
// labels shaped and ordered right to left.
func RenderSellerStatement(st *SellerStatement) ([]byte, error) {
	pdf := newPDF(lblStatement.FR + " — " + st.SellerName)
	pdf.AliasNbPages("{nb}")
	r := &renderer{pdf: pdf, primary: rgb{0x0F, 0x76, 0x6E}}
	r.light = r.primary.tint(0.92)
	pdf.SetFooterFunc(func() {
		r.font("", 7.5)
		r.text(muted)
		pdf.SetXY(margin, pageH-10)
		pdf.CellFormat(contentW, 4, fmt.Sprintf("%s — %s — page %d/{nb}", lblStatement.FR, st.SellerName, pdf.PageNo()), "", 0, "C", false, 0, "")
	})
	pdf.AddPage()
	// Title band.
	r.fill(r.primary)
	pdf.Rect(0, 0, pageW, 30, "F")
	r.text(white)
	r.font("B", 16)
	pdf.SetXY(margin, 8)
	pdf.CellFormat(contentW/2, 8, lblStatement.FR, "", 0, "L", false, 0, "")
	r.font("B", 14)
	r.arabic(margin+contentW/2, 8, contentW/2, 8, lblStatement.AR)
	r.font("", 10)
	pdf.SetXY(margin, 18)
	pdf.CellFormat(contentW, 6, st.SellerName, "", 0, "L", false, 0, "")
	y := 36.0
	r.labelPair(margin, y, contentW, 5, lblPeriod, 9)
	y += 5
	r.font("B", 10)
	r.text(ink)
	pdf.SetXY(margin, y)
	pdf.CellFormat(contentW, 6, "du "+frDate(st.From)+" au "+frDate(st.To.Add(-time.Nanosecond)), "", 0, "L", false, 0, "")
	y += 10

	ensure := func(need float64) {
		if y+need > pageH-18 {
			pdf.AddPage()
			y = margin
		}
	}
	amountCell := func(x, w float64, a money.Amount, bold bool) {
		style := ""
		if bold {
			style = "B"
		}
		r.font(style, 9)
		pdf.SetXY(x, y)
		pdf.CellFormat(w, rowH, a.Format(), "", 0, "R", false, 0, "")
	}
	totalLine := func(l Label, a money.Amount) {
		ensure(rowH + 1)
		r.pair(margin, y, contentW-40, rowH, l.FR, l.AR, 9, ink, muted)
		r.text(ink)
		amountCell(margin+contentW-40, 40, a, true)
		y += rowH
	}
	for _, s := range st.Stores {
		ensure(4 * rowH)
		r.fill(r.light)
		pdf.Rect(margin, y, contentW, rowH+1, "F")
		r.text(r.primary)
		r.font("B", 10)
		pdf.SetXY(margin+2, y)
		pdf.CellFormat(contentW-4, rowH+1, s.Name, "", 0, "L", false, 0, "")
		y += rowH + 2
		totalLine(lblOpening, s.Opening)
		rows := make([]statementRow, 0, len(s.Invoices)+len(s.Payments))
		for _, inv := range s.Invoices {
			rows = append(rows, statementRow{inv.IssuedAt, fmt.Sprintf("Facture %s (%s – %s)", inv.Number, frDate(inv.PeriodStart),
				frDate(inv.PeriodEnd.Add(-time.Nanosecond))), inv.Net})
		}
		for _, p := range s.Payments {
			label := "Règlement facture " + p.Number
			if p.Reference != "" {
				label += " — " + p.Reference
			}
			rows = append(rows, statementRow{p.PaidAt, label, -p.Amount})
		}
		sort.SliceStable(rows, func(i, j int) bool { return rows[i].at.Before(rows[j].at) })
		for _, row := range rows {
			ensure(rowH)
			r.text(ink)
			r.font("", 8.5)
			pdf.SetXY(margin, y)
			pdf.CellFormat(22, rowH, frDate(row.at), "", 0, "L", false, 0, "")
			pdf.SetXY(margin+22, y)
			pdf.CellFormat(contentW-62, rowH, row.label, "", 0, "L", false, 0, "")
			amountCell(margin+contentW-40, 40, row.amount, false)
			y += rowH
		}
		totalLine(lblInvoiced, s.Invoiced)
		totalLine(lblPayments, s.Paid)
		totalLine(lblClosing, s.Closing)
		y += 4
	}
	ensure(5 * rowH)
	r.draw(r.primary)
	pdf.Line(margin, y, margin+contentW, y)
	y += 2
	r.text(r.primary)
	r.pair(margin, y, contentW, rowH, lblAllStores.FR, lblAllStores.AR, 10, r.primary, r.primary)
	y += rowH + 1
	totalLine(lblOpening, st.Opening)
	totalLine(lblInvoiced, st.Invoiced)
	totalLine(lblPayments, st.Paid)
	totalLine(lblClosing, st.Closing)
	if err := pdf.Error(); err != nil {
		return nil, fmt.Errorf("render statement: %w", err)
	}
	var buf bytes.Buffer
	if err := pdf.Output(&buf); err != nil {
		return nil, fmt.Errorf("render statement: %w", err)
	}
	return buf.Bytes(), nil
}
