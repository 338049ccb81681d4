package intake

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzParseRow feeds arbitrary cells through the sample mapping: Parse never
// panics, every row gets exactly one verdict, an accepted row has a phone and
// a key, and the checksum depends only on the cells.
func FuzzParseRow(f *testing.F) {
	f.Add("ORD-1\x1f02/11/2026\x1fA\x1f0612345678\x1fRabat\x1f\x1fRobe\x1f2\x1f249,00\x1f=HYPERLINK(\"x\")", false)
	f.Add("\x1f\x1f\x1f06 12 34 56 78\x1fالرباط", true)
	f.Add("x\x1f\x1f\x1f+212 7-5651-5055\x1fTanja\x1f\x1f\x1f٣\x1f120 درهم", false)
	f.Add("\xff\x1f\x1f\x1f0612", false)
	m := sampleMapping(f)
	f.Fuzz(func(t *testing.T, joined string, ragged bool) {
		cells := strings.Split(joined, "\x1f")
		r := m.Parse(2, cells, ragged)
		if r.Accepted() {
			if r.Phone.E164 == "" || r.Key == "" {
				t.Fatalf("accepted row without phone or key: %+v", r)
			}
			if !utf8.ValidString(r.Key) && strings.HasPrefix(r.Key, "h:") {
				t.Fatalf("hash key not UTF-8: %q", r.Key)
			}
			if r.Qty < 1 || r.Price < 0 {
				t.Fatalf("qty %d price %d", r.Qty, r.Price)
			}
		}
		if key, sum, ok := m.Identify(cells, ragged); ok && r.Accepted() && (key != r.Key || sum != r.Checksum) {
			t.Fatalf("Identify (%q) disagrees with Parse (%q)", key, r.Key)
		}
		if again := m.Parse(9, cells, ragged); again.Checksum != r.Checksum || again.Key != r.Key || again.Reject != r.Reject {
			t.Fatalf("parse is not deterministic")
		}
	})
}

// FuzzMapping resolves arbitrary specs against arbitrary headers: Resolve
// either fails with one of its errors or yields a mapping with a phone column
// that Parse can use on rows of any width.
func FuzzMapping(f *testing.F) {
	f.Add("N° Commande\x1fTéléphone\x1fVille", "phone", "C", "custom", "x")
	f.Add("الهاتف\x1fالمدينة", "phone", "الهاتف", "city", "B")
	f.Add("", "phone", "ZZZ", "custom", "")
	f.Fuzz(func(t *testing.T, header, field1, col1, field2, col2 string) {
		h := strings.Split(header, "\x1f")
		spec := Spec{Bindings: []Binding{{Field: Field(field1), Column: col1}, {Field: Field(field2), Custom: col2, Column: col2}}}
		for _, s := range []Spec{spec, Suggest(h)} {
			m, err := Resolve(s, h)
			if err != nil {
				if !errors.Is(err, ErrNoPhone) && !errors.Is(err, ErrUnknownColumn) && !errors.Is(err, ErrBadBinding) {
					t.Fatalf("unexpected error %v", err)
				}
				continue
			}
			if _, ok := m.Column(FieldPhone); !ok {
				t.Fatal("mapping without phone")
			}
			m.Parse(2, h, false)
			m.Parse(3, nil, true)
		}
	})
}

// FuzzCSV reads arbitrary bytes as a CSV upload: the reader never panics and
// ends (with io.EOF or an error) after at most one record per input line.
func FuzzCSV(f *testing.F) {
	f.Add([]byte("\xef\xbb\xbfPhone;City\r\n0612345678;Rabat\r\n\r\n\"06\n12\";x\n"))
	f.Add([]byte("a,b\n\"unterminated\n"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, data []byte) {
		src, err := NewCSV(bytes.NewReader(data))
		if err != nil {
			return
		}
		m, err := Resolve(Spec{Bindings: []Binding{{Field: FieldPhone, Column: "A"}}}, src.Header())
		if err != nil {
			t.Fatal(err)
		}
		limit := bytes.Count(data, []byte("\n")) + bytes.Count(data, []byte("\r")) + 2
		for i := 0; ; i++ {
			if i > limit {
				t.Fatalf("more records than lines")
			}
			rec, err := src.Next()
			if errors.Is(err, io.EOF) {
				return
			}
			if err != nil {
				continue
			}
			m.Parse(rec.Num, rec.Cells, rec.Ragged)
		}
	})
}

// FuzzParseDate: ParseDate never panics and accepts only years 2000–2100.
func FuzzParseDate(f *testing.F) {
	for _, s := range []string{"02/11/2026", "2026-11-06 11:37", "2/11/26", "31/02/2026", "hier"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDate(s)
		if err == nil && (d.Year() < 2000 || d.Year() > 2100) {
			t.Fatalf("%q → %v", s, d)
		}
	})
}
