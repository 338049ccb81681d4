package billing

import (
	"bytes"
	"fmt"
	"time"

	"github.com/leadify/leadify/shared/money"
)

// The agent payout statement's bilingual labels.
var (
	lblPayoutStatement = Label{"Relevé de commissions", "كشف العمولات"}
	lblAgent           = Label{"Agent", "الوكيل"}
	lblEarned          = Label{"Commissions gagnées", "العمولات المكتسبة"}
	lblReversedTotal   = Label{"Annulations", "الإلغاءات"}
	lblPeriodNet       = Label{"Net de la période", "صافي الفترة"}
	lblPayable         = Label{"Reste à payer", "المبلغ المتبقي للدفع"}
	lblPayouts         = Label{"Paiements effectués", "الدفعات المنجزة"}
	payoutHeaders      = []string{"Date", "Règle", "Colis", "Type", "Statut", "Montant"}
	payoutColW         = []float64{22, 58, 30, 24, 24, 24}
)

// PayoutLabels returns every bilingual label printed on a payout statement.
func PayoutLabels() []Label {
	return []Label{lblPayoutStatement, lblAgent, lblPeriod, lblEarned, lblReversedTotal, lblPeriodNet, lblPayable, lblPayouts}
}

var entryStatusFR = map[string]string{StatusPending: "En attente", StatusEarned: "Acquise", StatusPaid: "Payée", StatusReversed: "Annulée"}

// RenderPayoutStatement prints an agent's payout statement: every entry of
// the period, the totals, what remains payable and the payouts made.
func RenderPayoutStatement(st *PayoutStatement) ([]byte, error) {
	pdf := newPDF(lblPayoutStatement.FR + " — " + st.AgentName)
	pdf.AliasNbPages("{nb}")
	r := &renderer{pdf: pdf, primary: rgb{0x0F, 0x76, 0x6E}}
	r.light = r.primary.tint(0.92)
	pdf.SetFooterFunc(func() {
		r.font("", 7.5)
		r.text(muted)
		pdf.SetXY(margin, pageH-10)
		pdf.CellFormat(contentW, 4, fmt.Sprintf("%s — %s — page %d/{nb}", lblPayoutStatement.FR, st.AgentName, pdf.PageNo()), "", 0, "C", false, 0, "")
	})
	pdf.AddPage()
	r.fill(r.primary)
	pdf.Rect(0, 0, pageW, 30, "F")
	r.text(white)
	r.font("B", 16)
	pdf.SetXY(margin, 8)
	pdf.CellFormat(contentW/2, 8, lblPayoutStatement.FR, "", 0, "L", false, 0, "")
	r.font("B", 14)
	r.arabic(margin+contentW/2, 8, contentW/2, 8, lblPayoutStatement.AR)
	r.font("", 10)
	pdf.SetXY(margin, 18)
	pdf.CellFormat(contentW, 6, st.StoreName, "", 0, "L", false, 0, "")
	y := 36.0
	r.labelPair(margin, y, contentW/2-4, 5, lblAgent, 9)
	r.labelPair(margin+contentW/2+4, y, contentW/2-4, 5, lblPeriod, 9)
	y += 5
	r.font("B", 10)
	r.text(ink)
	pdf.SetXY(margin, y)
	pdf.CellFormat(contentW/2-4, 6, st.AgentName, "", 0, "L", false, 0, "")
	pdf.SetXY(margin+contentW/2+4, y)
	pdf.CellFormat(contentW/2-4, 6, "du "+frDate(st.From)+" au "+frDate(st.To.Add(-time.Nanosecond)), "", 0, "L", false, 0, "")
	y += 10

	header := func() {
		r.fill(r.primary)
		pdf.Rect(margin, y, contentW, rowH+1, "F")
		r.text(white)
		r.font("B", 8.5)
		x := margin
		for i, h := range payoutHeaders {
			align := "L"
			if i == len(payoutHeaders)-1 {
				align = "R"
			}
			pdf.SetXY(x+1, y)
			pdf.CellFormat(payoutColW[i]-2, rowH+1, h, "", 0, align, false, 0, "")
			x += payoutColW[i]
		}
		y += rowH + 1
	}
	ensure := func(need float64, withHeader bool) {
		if y+need > pageH-18 {
			pdf.AddPage()
			y = margin
			if withHeader {
				header()
			}
		}
	}
	header()
	for i, e := range st.Entries {
		ensure(rowH, true)
		if i%2 == 1 {
			r.fill(r.light)
			pdf.Rect(margin, y, contentW, rowH, "F")
		}
		kind := "Gain"
		if e.Kind == "reversal" {
			kind = "Annulation"
		}
		cells := []string{frDate(e.OccurredAt), e.RuleName, e.ParcelID.String()[:8], kind, entryStatusFR[e.Status], e.Amount.Format()}
		r.text(ink)
		r.font("", 8)
		x := margin
		for j, c := range cells {
			align := "L"
			if j == len(cells)-1 {
				align = "R"
			}
			pdf.SetXY(x+1, y)
			pdf.CellFormat(payoutColW[j]-2, rowH, c, "", 0, align, false, 0, "")
			x += payoutColW[j]
		}
		y += rowH
	}
	y += 4
	total := func(l Label, a money.Amount) {
		ensure(rowH+1, false)
		r.pair(margin, y, contentW-40, rowH, l.FR, l.AR, 9, ink, muted)
		r.text(ink)
		r.font("B", 9)
		pdf.SetXY(margin+contentW-40, y)
		pdf.CellFormat(40, rowH, a.Format(), "", 0, "R", false, 0, "")
		y += rowH
	}
	total(lblEarned, st.Earned)
	total(lblReversedTotal, st.Reversed)
	total(lblPeriodNet, st.Net)
	total(lblPayable, st.Payable)
	y += 4
	ensure(rowH*2, false)
	r.pair(margin, y, contentW, rowH, lblPayouts.FR, lblPayouts.AR, 10, r.primary, r.primary)
	y += rowH + 1
	for _, p := range st.Payouts {
		ensure(rowH, false)
		r.text(ink)
		r.font("", 8.5)
		pdf.SetXY(margin, y)
		label := frDate(p.PaidAt) + " — " + fmt.Sprintf("%d écritures jusqu'au %s", p.Entries, frDate(p.Cutoff.Add(-time.Nanosecond)))
		if p.Reference != "" {
			label += " — " + p.Reference
		}
		pdf.CellFormat(contentW-40, rowH, label, "", 0, "L", false, 0, "")
		pdf.SetXY(margin+contentW-40, y)
		pdf.CellFormat(40, rowH, p.Total.Format(), "", 0, "R", false, 0, "")
		y += rowH
	}
	if err := pdf.Error(); err != nil {
		return nil, fmt.Errorf("render payout statement: %w", err)
	}
	var buf bytes.Buffer
	if err := pdf.Output(&buf); err != nil {
		return nil, fmt.Errorf("render payout statement: %w", err)
	}
	return buf.Bytes(), nil
}
