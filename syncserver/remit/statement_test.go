package remit_test

import (
	"archive/zip"
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/xuri/excelize/v2"

	"github.com/leadify/leadify/shared/money"
	"github.com/leadify/leadify/syncserver/remit"
)

// A Coliix statement: title rows before the header, semicolons, French
// amounts, itemised fees, a returned parcel with a negative net, a total row.
const coliixCSV = "Relevé de versement N° RV-2026-031;;;;;;;;\n" +
	"Période : 01/03/2026 - 15/03/2026;;;;;;;;\n" +
	";;;;;;;;\n" +
	"Code d'envoi;Destinataire;Ville;Statut;CRBT;Frais de livraison;Frais de retour;Frais CRBT;Net\n" +
	"4-CSA0001;Fatima Z.;Casablanca;Livré ;249,00;20,00;0;5,00;224,00\n" +
	"4-CSA0002;Omar B.;Rabat;Livré;1 299,50 DH;25,00;;5,00;1 269,50\n" +
	"4-CSA0003;Hind K.;Fès;Retourné;0;0;15,00;0;-15,00\n" +
	"TOTAL;;;;;;;;1 478,50\n"

func TestParseColiixStatement(t *testing.T) {
	t.Parallel()
	st, err := remit.ParseCSV(strings.NewReader(coliixCSV))
	require.NoError(t, err)
	require.Len(t, st.Lines, 3)
	l := st.Lines[1]
	require.Equal(t, "4-CSA0002", l.Tracking)
	require.Equal(t, remit.Delivered, l.Outcome)
	require.Equal(t, 129950*money.Centime, l.COD)
	require.True(t, l.Itemised)
	require.Equal(t, 25*money.Dirham, l.DeliveryFee)
	require.Equal(t, 5*money.Dirham, l.CODFee)
	require.Equal(t, 30*money.Dirham, l.Fees)
	require.Equal(t, 126950*money.Centime, l.Net)
	require.Equal(t, 6, l.No, "row number in the file")
	r := st.Lines[2]
	require.Equal(t, remit.Returned, r.Outcome)
	require.Equal(t, -15*money.Dirham, r.Net)
	require.NotNil(t, st.Declared)
	total, err := st.Total()
	require.NoError(t, err)
	require.Equal(t, *st.Declared, total)
}

func TestParseOtherLayouts(t *testing.T) {
	t.Parallel()
	// Ameex: commas, one fee column.
	st, err := remit.ParseCSV(strings.NewReader("Code colis,Ville,Statut,Montant,Frais,Montant net\n" +
		"MRK1,Casablanca,Livré,199.00,25.00,174.00\nMRK2,Agadir,Refusé,,20.00,-20.00\n"))
	require.NoError(t, err)
	require.Len(t, st.Lines, 2)
	require.False(t, st.Lines[0].Itemised)
	require.Equal(t, 25*money.Dirham, st.Lines[0].Fees)
	require.Equal(t, remit.Returned, st.Lines[1].Outcome)
	// Sendit-like with only a net: fees are COD − net.
	st, err = remit.ParseCSV(strings.NewReader("Code;Statut;Montant;Net à payer\nSD1;Livré;300;270\n"))
	require.NoError(t, err)
	require.Equal(t, 30*money.Dirham, st.Lines[0].Fees)
}

func TestParseRefusesBadStatements(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct{ csv, want string }{
		"no header":       {"a;b\n1;2\n", "no header row"},
		"no lines":        {"Code;CRBT\n", "no lines"},
		"bad amount":      {"Code;CRBT\nX1;douze\n", `row 2: COD "douze"`},
		"net mismatch":    {"Code;CRBT;Frais;Net\nX1;100;20;70\n", "row 2: net 70,00 MAD is not COD"},
		"unknown status":  {"Code;Statut;CRBT\nX1;En voyage;100\n", `status "En voyage"`},
		"returned w/ COD": {"Code;Statut;CRBT\nX1;Retourné;100\n", "a returned parcel with COD"},
		"wrong total":     {"Code;CRBT;Net\nX1;100;100\nTotal;;90\n", "total row says 90,00 MAD"},
		"no tracking":     {"Code;CRBT\n;100\n", "row 2: no tracking code"},
		"negative fee":    {"Code;CRBT;Frais\nX1;100;-5\n", "row 2: fees"},
	} {
		_, err := remit.ParseCSV(strings.NewReader(tc.csv))
		require.Error(t, err, name)
		require.True(t, errors.Is(err, remit.ErrInvalid), name)
		require.Contains(t, err.Error(), tc.want, name)
	}
	// Every bad row is listed, not just the first.
	_, err := remit.ParseCSV(strings.NewReader("Code;CRBT\nX1;a\nX2;100\nX3;b\n"))
	var se *remit.StatementError
	require.ErrorAs(t, err, &se)
	require.Len(t, se.Problems, 2)
	require.Equal(t, []int{2, 4}, []int{se.Problems[0].Row, se.Problems[1].Row})
}

// The same statement as CSV and as XLSX has the same digest: importing both
// is importing it once.
func TestXLSXStatementDigestsLikeCSV(t *testing.T) {
	t.Parallel()
	fromCSV, err := remit.ParseCSV(strings.NewReader(coliixCSV))
	require.NoError(t, err)
	data := xlsxOf(t, coliixCSV)
	fromXLSX, format, err := remit.ParseFile(data)
	require.NoError(t, err)
	require.Equal(t, "xlsx", format)
	require.Equal(t, fromCSV.Digest(), fromXLSX.Digest())
	_, format, err = remit.ParseFile([]byte(coliixCSV))
	require.NoError(t, err)
	require.Equal(t, "csv", format)
}

// xlsxOf writes semicolon-separated text as a workbook's first sheet.
func xlsxOf(t testing.TB, text string) []byte {
	f := excelize.NewFile()
	for i, line := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		for j, cell := range strings.Split(line, ";") {
			name, err := excelize.CoordinatesToCellName(j+1, i+1)
			require.NoError(t, err)
			require.NoError(t, f.SetCellStr("Sheet1", name, cell))
		}
	}
	var buf bytes.Buffer
	require.NoError(t, f.Write(&buf))
	return buf.Bytes()
}

// FuzzParseStatement: any file either fails with a *StatementError or gives
// lines whose nets are COD − fees, non-negative fees, a total equal to the
// sum of the lines (and to the declared total), and a stable digest.
func FuzzParseStatement(f *testing.F) {
	f.Add([]byte(coliixCSV))
	f.Add([]byte("Code colis,Ville,Statut,Montant,Frais,Montant net\nMRK1,Casablanca,Livré,199.00,25.00,174.00\n"))
	f.Add([]byte("Code;Statut;Montant;Net à payer\nSD1;Livré;300;270\nTotal;;;270\n"))
	f.Add([]byte("Code;CRBT;Frais;Net\nX1;100;20;(70)\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		st, _, err := remit.ParseFile(data)
		if err != nil {
			var se *remit.StatementError
			if !errors.As(err, &se) || !errors.Is(err, remit.ErrInvalid) {
				t.Fatalf("error is not a StatementError: %v", err)
			}
			return
		}
		var sum money.Amount
		for _, l := range st.Lines {
			if l.Tracking == "" || l.Fees < 0 || l.COD < 0 {
				t.Fatalf("bad line accepted: %+v", l)
			}
			if net, err := l.COD.Sub(l.Fees); err != nil || net != l.Net {
				t.Fatalf("net %v != COD %v − fees %v", l.Net, l.COD, l.Fees)
			}
			if l.Outcome == remit.Returned && l.COD != 0 {
				t.Fatalf("returned line with COD: %+v", l)
			}
			var err error
			if sum, err = sum.Add(l.Net); err != nil {
				t.Fatalf("accepted a statement whose total overflows")
			}
		}
		total, err := st.Total()
		if err != nil || total != sum {
			t.Fatalf("total %v != sum %v (%v)", total, sum, err)
		}
		if st.Declared != nil && *st.Declared != total {
			t.Fatalf("declared %v != total %v", *st.Declared, total)
		}
		again, _, err := remit.ParseFile(data)
		if err != nil || again.Digest() != st.Digest() {
			t.Fatalf("parsing twice differs: %v", err)
		}
	})
}

// Lines entered by hand obey the rules a file's lines do.
func TestValidateManualLines(t *testing.T) {
	t.Parallel()
	ok := remit.Line{Tracking: "M1", Outcome: remit.Delivered, COD: 100_00, Itemised: true, DeliveryFee: 20_00, CODFee: 5_00,
		Fees: 25_00, Net: 75_00}
	require.NoError(t, (&remit.Statement{Lines: []remit.Line{ok}}).Validate())
	for name, tc := range map[string]struct {
		edit func(*remit.Line)
		want string
	}{
		"no tracking":   {func(l *remit.Line) { l.Tracking = "  " }, "no tracking code"},
		"outcome":       {func(l *remit.Line) { l.Outcome = "lost" }, "neither delivered nor returned"},
		"negative":      {func(l *remit.Line) { l.CODFee, l.Fees, l.Net = -5_00, 15_00, 85_00 }, "negative amount"},
		"itemised sum":  {func(l *remit.Line) { l.Fees, l.Net = 30_00, 70_00 }, "fees are not the sum of the itemised fees"},
		"net":           {func(l *remit.Line) { l.Net = 80_00 }, "net 80,00 MAD is not COD"},
		"returned cash": {func(l *remit.Line) { l.Outcome = remit.Returned }, "a returned parcel with COD"},
	} {
		l := ok
		tc.edit(&l)
		err := (&remit.Statement{Lines: []remit.Line{ok, l}}).Validate()
		require.ErrorIs(t, err, remit.ErrInvalid, name)
		require.Contains(t, err.Error(), "row 2: ", name)
		require.Contains(t, err.Error(), tc.want, name)
		require.NotContains(t, err.Error(), "row 1", name)
	}
	require.ErrorIs(t, (&remit.Statement{}).Validate(), remit.ErrInvalid, "no lines")
}

// A workbook that claims to inflate beyond the bound is refused before it is
// inflated.
func TestZipBombRefused(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, err := zw.Create("xl/worksheets/sheet1.xml")
	require.NoError(t, err)
	chunk := bytes.Repeat([]byte{'0'}, 1<<20)
	for range 300 {
		_, err := w.Write(chunk)
		require.NoError(t, err)
	}
	require.NoError(t, zw.Close())
	_, _, err = remit.ParseFile(buf.Bytes())
	require.ErrorIs(t, err, remit.ErrInvalid)
	require.ErrorContains(t, err, "inflates to more than")
	_, _, err = remit.ParseFile([]byte("PK\x03\x04garbage"))
	require.ErrorIs(t, err, remit.ErrInvalid)
}

// The ASCII fast path folds like the Unicode one.
func FuzzFoldASCII(f *testing.F) {
	f.Add("Code d'envoi")
	f.Add("N° COLIS")
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := remit.Fold(s), remit.FoldSlow(s); got != want {
			t.Fatalf("fold(%q) = %q, want %q", s, got, want)
		}
	})
}
