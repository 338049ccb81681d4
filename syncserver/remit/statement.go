package remit

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode"

	"golang.org/x/text/runes"
	"golang.org/x/text/transform"
	"golang.org/x/text/unicode/norm"

	"github.com/leadify/leadify/shared/money"
	"github.com/leadify/leadify/syncserver/intake"
)

// A carrier's remittance statement ("relevé de versement") lists, for each
// parcel the carrier settled, its tracking code, outcome, the cash collected,
// the fees it kept and the net it paid. The carriers' exports differ in
// column names and order, and often start with title rows, so columns are
// found by their header, like intake's: case, accents, punctuation and
// spaces are ignored, and the header row may be any of the first 20 rows.
// Layouts seen (CSV, comma or semicolon separated, or XLSX):
//
//	Coliix:  Code d'envoi; Destinataire; Ville; Statut; CRBT; Frais de livraison; Frais de retour; Frais CRBT; Net
//	Ameex:   Code colis, Ville, Statut, Montant, Frais, Montant net
//	Sendit:  Code, Client, Ville, Statut, Montant, Frais livraison, Frais retour, Net à payer
//
// Required: a tracking column and a COD column. Fees come either itemised
// (delivery, return, COD) or as one total; when only the net is given the
// fees are COD − net. A line's net must equal COD − fees. A row whose
// tracking cell says "Total" carries the statement's declared total, which
// must equal the sum of the lines' nets. Any bad line refuses the whole
// statement with every problem listed: nothing is half-imported.

// Outcome is what happened to a statement line's parcel.
type Outcome string

// Outcomes.
const (
	Delivered Outcome = "delivered" // cash collected
	Returned  Outcome = "returned"  // refused, returned or cancelled: only a return fee
)

// Line is one parcel of a statement.
type Line struct {
	No       int // the row number in the file (or 1-based position when entered by hand)
	Tracking string
	Outcome  Outcome
	COD      money.Amount
	// Itemised says the carrier itemised its fees; otherwise only Fees is known.
	Itemised                       bool
	DeliveryFee, ReturnFee, CODFee money.Amount
	Fees                           money.Amount
	Net                            money.Amount
}

// Statement is a parsed statement.
type Statement struct {
	Lines []Line
	// Declared is the statement's own total (a "Total" row), if it has one.
	Declared *money.Amount
}

// MaxLines bounds a statement: a carrier settles weekly, never this many.
const MaxLines = 200_000

// Problem is one bad row of a statement.
type Problem struct {
	Row int
	Msg string
}

// StatementError lists every problem of a statement. It wraps ErrInvalid.
type StatementError struct {
	Problems []Problem
}

func (e *StatementError) Error() string {
	var b strings.Builder
	b.WriteString("statement refused: ")
	for i, p := range e.Problems {
		if i == 10 {
			fmt.Fprintf(&b, "; and %d more", len(e.Problems)-10)
			break
		}
		if i > 0 {
			b.WriteString("; ")
		}
		if p.Row > 0 {
			fmt.Fprintf(&b, "row %d: ", p.Row)
		}
		b.WriteString(p.Msg)
	}
	return b.String()
}

func (e *StatementError) Unwrap() error { return ErrInvalid }

type field int

const (
	fTracking field = iota
	fStatus
	fCOD
	fDeliveryFee
	fReturnFee
	fCODFee
	fFees
	fNet
	nFields
)

// headerSynonyms are the headers carriers use, folded by fold.
var headerSynonyms = map[string]field{}

func init() {
	for f, names := range map[field][]string{
		fTracking: {"code", "codeenvoi", "codedenvoi", "codecolis", "codeducolis", "tracking", "trackingnumber", "trackingcode",
			"ncolis", "numerocolis", "nducolis", "colis", "parcelcode", "parcel", "codesuivi", "numerodesuivi", "barcode", "رقمالتتبع"},
		fStatus: {"statut", "status", "etat", "state", "statutcolis", "الحالة"},
		fCOD: {"crbt", "montantcrbt", "cod", "codamount", "montant", "montantencaisse", "encaisse", "prix", "prixcolis",
			"amount", "collected", "valeur", "المبلغ"},
		fDeliveryFee: {"fraislivraison", "fraisdelivraison", "livraison", "deliveryfee", "shippingfee", "fraisexpedition",
			"fraisdexpedition", "tariflivraison"},
		fReturnFee: {"fraisretour", "fraisderetour", "retour", "returnfee", "fraisderefus", "fraisrefus"},
		fCODFee:    {"fraiscrbt", "fraiscod", "commissioncrbt", "codfee", "fraisencaissement", "fraisdencaissement"},
		fFees:      {"frais", "totalfrais", "fraistotal", "fraistotaux", "fees", "totalfees", "الرسوم"},
		fNet: {"net", "montantnet", "netapayer", "netverse", "montantverse", "aversee", "averser", "netamount", "payout",
			"الصافي"},
	} {
		for _, n := range names {
			headerSynonyms[n] = f
		}
	}
}

// fold lowers s, strips accents and everything but letters and digits.
func fold(s string) string {
	ascii := true
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			ascii = false
			break
		}
	}
	if ascii { // the common case, without the Unicode machinery
		b := make([]byte, 0, len(s))
		for i := 0; i < len(s); i++ {
			c := s[i]
			switch {
			case c >= 'A' && c <= 'Z':
				b = append(b, c+'a'-'A')
			case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
				b = append(b, c)
			}
		}
		return string(b)
	}
	return foldUnicode(s)
}

func foldUnicode(s string) string {
	t := transform.Chain(norm.NFD, runes.Remove(runes.In(unicode.Mn)), norm.NFC)
	folded, _, err := transform.String(t, s)
	if err != nil {
		folded = s
	}
	var b strings.Builder
	for _, r := range strings.ToLower(folded) {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// columns maps each field to its column index (-1 if absent).
type columns [nFields]int

func matchHeader(cells []string) (columns, bool) {
	var c columns
	for i := range c {
		c[i] = -1
	}
	for i, h := range cells {
		if f, ok := headerSynonyms[fold(h)]; ok && c[f] < 0 {
			c[f] = i
		}
	}
	return c, c[fTracking] >= 0 && (c[fCOD] >= 0 || c[fNet] >= 0)
}

// totalWords mark the total row.
var totalWords = map[string]bool{"total": true, "totaux": true, "totalgeneral": true, "sommetotale": true, "المجموع": true}

// deliveredWords and returnedWords are outcome statuses, folded.
var deliveredWords = map[string]bool{"livre": true, "livree": true, "delivered": true, "paye": true, "payee": true,
	"encaisse": true, "تمالتسليم": true}
var returnedWords = map[string]bool{"retourne": true, "retournee": true, "retour": true, "refuse": true, "refusee": true,
	"returned": true, "refused": true, "annule": true, "annulee": true, "cancelled": true, "canceled": true,
	"retourneauvendeur": true, "annuleparvendeur": true, "مرتجع": true}

// ParseCSV reads a statement from a CSV file.
func ParseCSV(r io.Reader) (*Statement, error) {
	src, err := intake.NewCSV(r)
	if err != nil {
		return nil, &StatementError{Problems: []Problem{{Msg: err.Error()}}}
	}
	return Parse(src)
}

// ParseXLSX reads a statement from the first sheet of an XLSX workbook.
func ParseXLSX(r io.Reader) (*Statement, error) {
	src, err := intake.NewXLSX(r)
	if err != nil {
		return nil, &StatementError{Problems: []Problem{{Msg: err.Error()}}}
	}
	defer src.Close()
	return Parse(src)
}

// ParseFile picks the reader by the file's content: XLSX files are ZIP
// archives ("PK\x03\x04"); anything else is read as CSV.
func ParseFile(data []byte) (*Statement, string, error) {
	if bytes.HasPrefix(data, []byte("PK\x03\x04")) {
		if err := checkZip(data); err != nil {
			return nil, "xlsx", err
		}
		st, err := ParseXLSX(bytes.NewReader(data))
		return st, "xlsx", err
	}
	st, err := ParseCSV(bytes.NewReader(data))
	return st, "csv", err
}

// maxUnzipped bounds what an XLSX statement may inflate to: a statement of
// MaxLines lines is far below it, a zip bomb far above.
const maxUnzipped = 256 << 20

// checkZip refuses a workbook whose parts claim to inflate beyond
// maxUnzipped, before excelize inflates any of them.
func checkZip(data []byte) error {
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return &StatementError{Problems: []Problem{{Msg: "not a readable XLSX workbook: " + err.Error()}}}
	}
	var total uint64
	for _, f := range zr.File {
		total += f.UncompressedSize64
		if total > maxUnzipped {
			return &StatementError{Problems: []Problem{{Msg: "the workbook inflates to more than 256 MB"}}}
		}
	}
	return nil
}

// Parse reads a statement from a source: finds the header row, then reads
// every line. It fails with a *StatementError listing every bad row.
func Parse(src intake.Source) (*Statement, error) {
	cols, found := matchHeader(src.Header())
	headerRow := 1
	for tries := 1; !found && tries < 20; tries++ {
		rec, err := src.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			continue
		}
		headerRow = rec.Num
		cols, found = matchHeader(rec.Cells)
	}
	if !found {
		return nil, &StatementError{Problems: []Problem{{Msg: "no header row with a tracking column (Code, Code colis, Tracking…) " +
			"and an amount column (CRBT, Montant, COD…) in the first 20 rows"}}}
	}
	st := &Statement{}
	var problems []Problem
	bad := func(row int, format string, args ...any) {
		if len(problems) < 1000 {
			problems = append(problems, Problem{Row: row, Msg: fmt.Sprintf(format, args...)})
		}
	}
	for {
		rec, err := src.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			bad(rec.Num, "unreadable row: %v", err)
			if rec.Num == 0 {
				break // the source cannot go on
			}
			continue
		}
		if blankRow(rec.Cells) {
			continue
		}
		cell := func(f field) string {
			if i := cols[f]; i >= 0 && i < len(rec.Cells) {
				return strings.TrimSpace(rec.Cells[i])
			}
			return ""
		}
		if totalWords[fold(cell(fTracking))] {
			if st.Declared != nil {
				bad(rec.Num, "a second total row")
				continue
			}
			total, err := totalOf(cell, cols)
			if err != nil {
				bad(rec.Num, "total: %v", err)
				continue
			}
			st.Declared = &total
			continue
		}
		if len(st.Lines) == MaxLines {
			bad(rec.Num, "more than %d lines", MaxLines)
			break
		}
		line, msg := parseLine(cell, cols)
		if msg != "" {
			bad(rec.Num, "%s", msg)
			continue
		}
		line.No = rec.Num
		st.Lines = append(st.Lines, line)
	}
	if len(problems) == 0 && len(st.Lines) == 0 {
		problems = append(problems, Problem{Row: headerRow, Msg: "the statement has no lines"})
	}
	if len(problems) == 0 && st.Declared != nil {
		sum, err := st.Total()
		if err != nil {
			problems = append(problems, Problem{Msg: err.Error()})
		} else if sum != *st.Declared {
			problems = append(problems, Problem{Msg: fmt.Sprintf("the total row says %s but the lines' nets sum to %s", *st.Declared, sum)})
		}
	}
	if len(problems) > 0 {
		return nil, &StatementError{Problems: problems}
	}
	return st, nil
}

func blankRow(cells []string) bool {
	for _, c := range cells {
		if strings.TrimSpace(c) != "" {
			return false
		}
	}
	return true
}

// parseSigned reads an amount that may be negative ("-15,00", "−15", "(15,00)").
func parseSigned(s string) (money.Amount, error) {
	s = strings.TrimSpace(s)
	neg := false
	switch {
	case strings.HasPrefix(s, "-"):
		neg, s = true, s[1:]
	case strings.HasPrefix(s, "−"):
		neg, s = true, strings.TrimPrefix(s, "−")
	case strings.HasPrefix(s, "(") && strings.HasSuffix(s, ")"):
		neg, s = true, s[1:len(s)-1]
	}
	a, err := money.Parse(s)
	if neg {
		a = -a
	}
	return a, err
}

func totalOf(cell func(field) string, cols columns) (money.Amount, error) {
	if cols[fNet] >= 0 && cell(fNet) != "" {
		return parseSigned(cell(fNet))
	}
	return 0, errors.New("no net amount on the total row")
}

// amountCell reads an optional non-negative amount: an empty cell is zero.
func amountCell(s, name string) (money.Amount, string) {
	if s == "" {
		return 0, ""
	}
	a, err := money.Parse(s)
	if err != nil {
		return 0, fmt.Sprintf("%s %q: %v", name, s, err)
	}
	return a, ""
}

func parseLine(cell func(field) string, cols columns) (Line, string) {
	var l Line
	l.Tracking = cell(fTracking)
	if l.Tracking == "" {
		return l, "no tracking code"
	}
	if len(l.Tracking) > 64 {
		return l, "tracking code longer than 64 characters"
	}
	var msg string
	if l.COD, msg = amountCell(cell(fCOD), "COD"); msg != "" {
		return l, msg
	}
	for _, f := range []field{fDeliveryFee, fReturnFee, fCODFee} {
		if cols[f] >= 0 {
			l.Itemised = true
		}
	}
	if l.Itemised {
		if l.DeliveryFee, msg = amountCell(cell(fDeliveryFee), "delivery fee"); msg != "" {
			return l, msg
		}
		if l.ReturnFee, msg = amountCell(cell(fReturnFee), "return fee"); msg != "" {
			return l, msg
		}
		if l.CODFee, msg = amountCell(cell(fCODFee), "COD fee"); msg != "" {
			return l, msg
		}
		sum, err := money.Sum(l.DeliveryFee, l.ReturnFee, l.CODFee)
		if err != nil {
			return l, "fees: " + err.Error()
		}
		l.Fees = sum
		if cols[fFees] >= 0 && cell(fFees) != "" {
			total, msg := amountCell(cell(fFees), "fees")
			if msg != "" {
				return l, msg
			}
			if total != sum {
				return l, fmt.Sprintf("fees %s are not the sum of the itemised fees %s", total, sum)
			}
		}
	} else if cols[fFees] >= 0 {
		if l.Fees, msg = amountCell(cell(fFees), "fees"); msg != "" {
			return l, msg
		}
	}
	hasFees := l.Itemised || cols[fFees] >= 0
	switch {
	case cols[fNet] >= 0 && cell(fNet) != "":
		net, err := parseSigned(cell(fNet))
		if err != nil {
			return l, fmt.Sprintf("net %q: %v", cell(fNet), err)
		}
		l.Net = net
		if !hasFees {
			fees, err := l.COD.Sub(net)
			if err != nil || fees < 0 {
				return l, fmt.Sprintf("net %s is more than the COD %s", net, l.COD)
			}
			l.Fees = fees
		}
	default:
		net, err := l.COD.Sub(l.Fees)
		if err != nil {
			return l, "net: " + err.Error()
		}
		l.Net = net
	}
	if want, err := l.COD.Sub(l.Fees); err != nil || want != l.Net {
		return l, fmt.Sprintf("net %s is not COD %s minus fees %s", l.Net, l.COD, l.Fees)
	}
	status := fold(cell(fStatus))
	switch {
	case status == "":
		l.Outcome = Delivered
		if l.COD == 0 {
			l.Outcome = Returned
		}
	case deliveredWords[status]:
		l.Outcome = Delivered
	case returnedWords[status]:
		l.Outcome = Returned
	default:
		return l, fmt.Sprintf("status %q is neither delivered (Livré) nor returned (Retourné, Refusé, Annulé)", cell(fStatus))
	}
	if l.Outcome == Returned && l.COD != 0 {
		return l, fmt.Sprintf("a returned parcel with COD %s collected", l.COD)
	}
	return l, ""
}

// Total sums the lines' nets: what the statement paid.
func (s *Statement) Total() (money.Amount, error) {
	var t money.Amount
	for _, l := range s.Lines {
		var err error
		if t, err = t.Add(l.Net); err != nil {
			return 0, fmt.Errorf("%w: the statement's total overflows", ErrInvalid)
		}
	}
	return t, nil
}

// Digest is the SHA-256 of the statement's canonical lines: the same
// statement read from CSV or XLSX, or entered again, has the same digest.
func (s *Statement) Digest() [32]byte {
	h := sha256.New()
	var buf [8]byte
	num := func(v int64) {
		binary.BigEndian.PutUint64(buf[:], uint64(v))
		h.Write(buf[:])
	}
	str := func(v string) {
		num(int64(len(v)))
		h.Write([]byte(v))
	}
	num(int64(len(s.Lines)))
	for _, l := range s.Lines {
		str(l.Tracking)
		str(string(l.Outcome))
		num(int64(l.COD))
		item := int64(0)
		if l.Itemised {
			item = 1
		}
		num(item)
		num(int64(l.DeliveryFee))
		num(int64(l.ReturnFee))
		num(int64(l.CODFee))
		num(int64(l.Fees))
		num(int64(l.Net))
	}
	var d [32]byte
	copy(d[:], h.Sum(nil))
	return d
}

// Validate checks lines entered by hand with the rules a file's lines obey.
func (s *Statement) Validate() error {
	var problems []Problem
	if len(s.Lines) == 0 {
		problems = append(problems, Problem{Msg: "the statement has no lines"})
	}
	if len(s.Lines) > MaxLines {
		problems = append(problems, Problem{Msg: fmt.Sprintf("more than %d lines", MaxLines)})
	}
	for i := range s.Lines {
		l := &s.Lines[i]
		l.No = i + 1
		l.Tracking = strings.TrimSpace(l.Tracking)
		msg := ""
		switch {
		case l.Tracking == "":
			msg = "no tracking code"
		case len(l.Tracking) > 64:
			msg = "tracking code longer than 64 characters"
		case l.Outcome != Delivered && l.Outcome != Returned:
			msg = fmt.Sprintf("outcome %q is neither delivered nor returned", l.Outcome)
		case l.COD < 0 || l.DeliveryFee < 0 || l.ReturnFee < 0 || l.CODFee < 0 || l.Fees < 0:
			msg = "negative amount"
		case l.Outcome == Returned && l.COD != 0:
			msg = fmt.Sprintf("a returned parcel with COD %s collected", l.COD)
		}
		if msg == "" && l.Itemised {
			if sum, err := money.Sum(l.DeliveryFee, l.ReturnFee, l.CODFee); err != nil || sum != l.Fees {
				msg = "fees are not the sum of the itemised fees"
			}
		}
		if msg == "" {
			if net, err := l.COD.Sub(l.Fees); err != nil || net != l.Net {
				msg = fmt.Sprintf("net %s is not COD %s minus fees %s", l.Net, l.COD, l.Fees)
			}
		}
		if msg != "" {
			problems = append(problems, Problem{Row: l.No, Msg: msg})
		}
	}
	if len(problems) > 0 {
		return &StatementError{Problems: problems}
	}
	_, err := s.Total()
	return err
}
