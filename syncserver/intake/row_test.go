package intake

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/leadify/leadify/syncserver/intake/sample"
)

func sampleHeader() []string {
	return []string{"N° Commande", "Date", "Nom complet", "Téléphone", "Ville", "Adresse", "Produit", "Qté", "Prix",
		"Remarque", "Source", "UTM Campaign"}
}

func TestSuggestFrenchEnglishArabic(t *testing.T) {
	t.Parallel()
	spec := Suggest(sampleHeader())
	got := map[Field]string{}
	for _, b := range spec.Bindings {
		if b.Field == FieldCustom {
			got[Field("custom:"+b.Custom)] = b.Column
			continue
		}
		got[b.Field] = b.Column
	}
	require.Equal(t, map[Field]string{FieldOrderID: "N° Commande", FieldDate: "Date", FieldName: "Nom complet",
		FieldPhone: "Téléphone", FieldCity: "Ville", FieldAddress: "Adresse", FieldProduct: "Produit", FieldQty: "Qté",
		FieldPrice: "Prix", FieldNote: "Remarque", FieldSource: "Source", "custom:UTM Campaign": "UTM Campaign"}, got)

	for _, tc := range []struct {
		header string
		want   Field
	}{
		{"Phone", FieldPhone}, {"الهاتف", FieldPhone}, {"رقم الهاتف", FieldPhone}, {"TEL.", FieldPhone},
		{"المدينة", FieldCity}, {"City", FieldCity}, {"Order ID", FieldOrderID}, {"Quantity", FieldQty},
		{"الثمن", FieldPrice}, {"Full name", FieldName}, {"الاسم الكامل", FieldName}, {"Product", FieldProduct},
		{"Address", FieldAddress}, {"Note", FieldNote}, {"المنتج", FieldProduct}, {"Quantité", FieldQty},
	} {
		spec := Suggest([]string{tc.header})
		require.Len(t, spec.Bindings, 1, tc.header)
		require.Equal(t, tc.want, spec.Bindings[0].Field, tc.header)
	}
}

func TestSuggestRepeatedHeaderUsesLetters(t *testing.T) {
	t.Parallel()
	spec := Suggest([]string{"Phone", "Extra", "Extra", "Phone"})
	// The second phone column is kept as a custom field; the repeated custom
	// header is taken once.
	require.Equal(t, []Binding{{Field: FieldPhone, Column: "A"}, {Field: FieldCustom, Custom: "Extra", Column: "B"},
		{Field: FieldCustom, Custom: "Phone", Column: "D"}}, spec.Bindings)
	m, err := Resolve(spec, []string{"Phone", "Extra", "Extra", "Phone"})
	require.NoError(t, err)
	col, _ := m.Column(FieldPhone)
	require.Equal(t, 0, col)
}

func TestResolve(t *testing.T) {
	t.Parallel()
	h := sampleHeader()
	m, err := Resolve(Spec{Bindings: []Binding{{Field: FieldPhone, Column: "d"}, {Field: FieldCity, Column: "ville"},
		{Field: FieldCustom, Custom: "utm", Column: "L"}}}, h)
	require.NoError(t, err)
	col, ok := m.Column(FieldPhone)
	require.True(t, ok)
	require.Equal(t, 3, col)
	col, _ = m.Column(FieldCity)
	require.Equal(t, 4, col)
	require.False(t, m.HasOrderID())

	for _, tc := range []struct {
		spec Spec
		want error
	}{
		{Spec{}, ErrNoPhone},
		{Spec{Bindings: []Binding{{Field: FieldPhone, Column: "Portable"}}}, ErrUnknownColumn},
		{Spec{Bindings: []Binding{{Field: FieldPhone, Column: "A1"}}}, ErrUnknownColumn},
		{Spec{Bindings: []Binding{{Field: "colour", Column: "A"}}}, ErrBadBinding},
		{Spec{Bindings: []Binding{{Field: FieldPhone, Column: "A"}, {Field: FieldPhone, Column: "B"}}}, ErrBadBinding},
		{Spec{Bindings: []Binding{{Field: FieldPhone, Column: "A"}, {Field: FieldCustom, Column: "B"}}}, ErrBadBinding},
	} {
		_, err := Resolve(tc.spec, h)
		require.ErrorIs(t, err, tc.want, "%+v", tc.spec)
	}
}

func TestColumnLetters(t *testing.T) {
	t.Parallel()
	for i, s := range map[int]string{0: "A", 25: "Z", 26: "AA", 27: "AB", 701: "ZZ", 702: "AAA", MaxColumns - 1: "ZZZ"} {
		require.Equal(t, s, ColumnLetter(i))
		got, ok := letterIndex(s)
		require.True(t, ok)
		require.Equal(t, i, got)
	}
}

func sampleMapping(t testing.TB) *Mapping {
	m, err := Resolve(Suggest(sampleHeader()), sampleHeader())
	require.NoError(t, err)
	return m
}

func TestParseRow(t *testing.T) {
	t.Parallel()
	m := sampleMapping(t)
	row := func(cells ...string) Row { return m.Parse(2, cells, false) }

	r := row("ORD-000001", "02/11/2026", "محمد Bennani", "0713186091", "الرباط", "زنقة 5 رقم 20", "Sac à main cuir", "1", "249,00",
		"عافاك اتصل فالصباح", "Facebook", "ramadan26")
	require.True(t, r.Accepted(), r.Detail)
	require.Equal(t, "id:ORD-000001", r.Key)
	require.Equal(t, "+212713186091", r.Phone.E164)
	require.Equal(t, "0713186091", r.Phone.Raw)
	require.Equal(t, "rabat", r.City.ID)
	require.Equal(t, "الرباط", r.CityRaw)
	require.EqualValues(t, 24900, r.Price)
	require.EqualValues(t, 1, r.Qty)
	require.Equal(t, time.Date(2026, 11, 2, 0, 0, 0, 0, Casablanca), r.Date)
	require.Equal(t, map[string]string{"UTM Campaign": "ramadan26"}, r.Custom)
	require.Len(t, r.Cells, 12)
	require.Equal(t, Cell{Field: FieldPhone, Column: 3, Raw: "0713186091", Value: "+212713186091"}, r.Cells[3])

	// A formula is text, kept as the seller typed it.
	r = row("ORD-5", "2026-09-22 15:00", "x", "+212644026859", "Tangier", "", "Huile", "1", "120 DH", `=HYPERLINK("x")`)
	require.True(t, r.Accepted(), r.Detail)
	require.Equal(t, `=HYPERLINK("x")`, r.Note)
	require.Equal(t, "tanger", r.City.ID)

	for _, tc := range []struct {
		cells  []string
		ragged bool
		want   Reason
	}{
		{[]string{"1", "", "a", "", "Rabat"}, false, ReasonMissingPhone},
		{[]string{"1", "", "a"}, false, ReasonMissingPhone}, // trailing cells omitted: the phone is blank
		{[]string{"1", "", "a", "06123456", "Rabat"}, false, ReasonInvalidPhone},
		{[]string{"1", "", "a", "not a phone", "Rabat"}, false, ReasonInvalidPhone},
		{[]string{"1", "", "a", "0612345678", "Atlantis"}, false, ReasonUnknownCity},
		{[]string{"1", "", "a", "0612345678", "Rabat", "", "p", "1", "gratuit"}, false, ReasonBadPrice},
		{[]string{"1", "", "a", "0612345678", "Rabat", "", "p", "zero"}, false, ReasonBadQuantity},
		{[]string{"1", "", "a", "0612345678"}, true, ReasonTruncated},
		{[]string{"", " ", ""}, false, ReasonEmpty},
		{[]string{"1", "", "a", "0612345678", "Rabat", "\xff"}, false, ReasonInvalidText},
		{[]string{"1", "", "a", "0612345678", "Rabat", strings.Repeat("x", MaxCellBytes+1)}, false, ReasonTooLongCell},
	} {
		got := m.Parse(7, tc.cells, tc.ragged)
		require.Equal(t, tc.want, got.Reject, "%q", tc.cells)
	}
}

func TestRowKeyWithoutOrderID(t *testing.T) {
	t.Parallel()
	h := []string{"Phone", "Product", "Date", "Name"}
	m, err := Resolve(Suggest(h), h)
	require.NoError(t, err)
	require.False(t, m.HasOrderID())
	a := m.Parse(2, []string{"0612345678", "Robe", "2026-11-01", "A"}, false)
	b := m.Parse(9, []string{"06 12 34 56 78", "robe", "2026-11-01", "B"}, false)
	c := m.Parse(3, []string{"0612345678", "Robe", "2026-11-02", "A"}, false)
	require.True(t, strings.HasPrefix(a.Key, "h:"))
	require.Equal(t, a.Key, b.Key, "same phone, product and date: same order wherever the row sits")
	require.NotEqual(t, a.Key, c.Key)
	require.NotEqual(t, a.Checksum, b.Checksum, "the name differs")
}

func TestChecksumSeparatesCells(t *testing.T) {
	t.Parallel()
	h := []string{"Phone", "A", "B"}
	m, err := Resolve(Suggest(h), h)
	require.NoError(t, err)
	x := m.Parse(2, []string{"0612345678", "ab", "c"}, false)
	y := m.Parse(2, []string{"0612345678", "a", "bc"}, false)
	require.NotEqual(t, x.Checksum, y.Checksum)
	require.Equal(t, x.Checksum, m.Parse(5, []string{"0612345678", "ab", "c"}, false).Checksum)
}

func TestParseDate(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]time.Time{
		"2026-11-06 11:37":     time.Date(2026, 11, 6, 11, 37, 0, 0, Casablanca),
		"02/11/2026":           time.Date(2026, 11, 2, 0, 0, 0, 0, Casablanca),
		"2/11/26":              time.Date(2026, 11, 2, 0, 0, 0, 0, Casablanca),
		" 2026-11-06 ":         time.Date(2026, 11, 6, 0, 0, 0, 0, Casablanca),
		"11/02/2026 10:00":     time.Date(2026, 2, 11, 10, 0, 0, 0, Casablanca),
		"2026-11-06T10:00:00Z": time.Date(2026, 11, 6, 10, 0, 0, 0, time.UTC),
	} {
		got, err := ParseDate(in)
		require.NoError(t, err, in)
		require.True(t, want.Equal(got), "%s: %v", in, got)
	}
	for _, in := range []string{"", "hier", "31/02/2026", "13/13/2026", "1899-01-01", "2026-11-06 25:00"} {
		_, err := ParseDate(in)
		require.ErrorIs(t, err, ErrDate, in)
	}
}

// TestSampleSheet parses every row of the seller's real sheet: every row
// gets a verdict, and the rejects are the rows a person would reject.
func TestSampleSheet(t *testing.T) {
	t.Parallel()
	f := bytes.NewReader(sample.CSV)
	src, err := NewCSV(f)
	require.NoError(t, err)
	m, err := Resolve(Suggest(src.Header()), src.Header())
	require.NoError(t, err)
	reasons := map[Reason]int{}
	n := 0
	for {
		rec, err := src.Next()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		n++
		r := m.Parse(rec.Num, rec.Cells, rec.Ragged)
		reasons[r.Reject]++
		if r.Accepted() {
			require.NotEmpty(t, r.Phone.E164)
			require.True(t, r.Phone.IsMoroccan() || r.Phone.Valid)
			require.NotEmpty(t, r.Key)
		}
	}
	require.Equal(t, 1000-11, n, "1000 rows, 11 of them blank lines the reader skips")
	require.Greater(t, reasons[ReasonNone], 800, "%v", reasons)
	require.Positive(t, reasons[ReasonBadPrice], "%v", reasons) // "gratuit"
	t.Logf("sample verdicts: %v", reasons)
}

// TestChecksumIsStable: a row's checksum is sha256 over each mapped cell's
// length (8 bytes, little-endian) and text, in mapping order, custom columns
// last, cut to 16 bytes. The checksums recorded by earlier imports depend on
// it: a change would make every row of a re-sync look edited.
func TestChecksumIsStable(t *testing.T) {
	t.Parallel()
	header := sampleHeader()
	m, err := Resolve(Suggest(header), header)
	require.NoError(t, err)
	m.custom = append(m.custom, customColumn{name: "extra", col: len(header) + 2}) // past the row's end: blank
	rows := [][]string{
		{"B-1", "2026-11-20", "Salma", "0612345678", "Casablanca", "Bd Zerktouni", "Huile", "ARG", "2", "249", "", "fb"},
		{"B-2", "", "", "", ""},
		{strings.Repeat("x", 3000), "٠٦١٢٣٤٥٦٧٨"},
	}
	for _, cells := range rows {
		h := sha256.New()
		add := func(col int) {
			raw := ""
			if col < len(cells) {
				raw = cells[col]
			}
			var n [8]byte
			binary.LittleEndian.PutUint64(n[:], uint64(len(raw)))
			h.Write(n[:])
			h.Write([]byte(raw))
		}
		for _, f := range Fields {
			if col, ok := m.Column(f); ok {
				add(col)
			}
		}
		for _, cc := range m.custom {
			add(cc.col)
		}
		var want [16]byte
		copy(want[:], h.Sum(nil))
		require.Equal(t, want, m.checksum(cells))
		require.Equal(t, want, m.Parse(1, cells, false).Checksum)
	}
}
