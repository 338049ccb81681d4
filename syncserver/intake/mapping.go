// Package intake turns the rows sellers send — Google Sheets, CSV and XLSX
// files, shop orders — into leads. A Mapping binds sheet columns (by header
// name or column letter) onto lead fields and custom fields; Parse reads one
// row into typed values beside the seller's text, with a stable row key and a
// checksum; an Importer streams parsed rows into Postgres in bounded chunks
// through the versioned-write helper and reports what became of every row.
// Nothing here evaluates a cell: a formula is text like any other.
package intake

import (
	"errors"
	"fmt"
	"strings"
	"unicode"

	"golang.org/x/text/runes"
	"golang.org/x/text/transform"
	"golang.org/x/text/unicode/norm"
)

// Field is a lead field a column can be mapped onto.
type Field string

// The lead fields.
const (
	FieldOrderID Field = "order_id"
	FieldDate    Field = "date"
	FieldName    Field = "customer_name"
	FieldPhone   Field = "phone"
	FieldCity    Field = "city"
	FieldAddress Field = "address"
	FieldProduct Field = "product"
	FieldSKU     Field = "sku"
	FieldQty     Field = "qty"
	FieldPrice   Field = "price"
	FieldNote    Field = "note"
	FieldSource  Field = "source"
	// FieldCustom maps a column onto a custom field named by the binding.
	FieldCustom Field = "custom"
)

// Fields lists the lead fields in display order (FieldCustom excluded).
var Fields = []Field{FieldOrderID, FieldDate, FieldName, FieldPhone, FieldCity, FieldAddress, FieldProduct,
	FieldSKU, FieldQty, FieldPrice, FieldNote, FieldSource}

func (f Field) valid() bool {
	if f == FieldCustom {
		return true
	}
	for _, g := range Fields {
		if f == g {
			return true
		}
	}
	return false
}

// Binding maps one column onto a field. Column is a header name ("Téléphone")
// or a column letter ("D"); a letter is tried as a header first, so a sheet
// whose header really is "D" still maps by name.
type Binding struct {
	Field  Field  `json:"field"`
	Custom string `json:"custom,omitempty"` // the custom field's name when Field is FieldCustom
	Column string `json:"column"`
}

// Spec is a column mapping as the seller saves it.
type Spec struct {
	Bindings []Binding `json:"bindings"`
}

// Mapping is a Spec resolved against a header row: column indexes.
type Mapping struct {
	fields [12]int // column index per field, -1 when unmapped
	custom []customColumn
	width  int // one past the highest mapped column
}

type customColumn struct {
	name string
	col  int
}

var fieldIndex = map[Field]int{FieldOrderID: 0, FieldDate: 1, FieldName: 2, FieldPhone: 3, FieldCity: 4,
	FieldAddress: 5, FieldProduct: 6, FieldSKU: 7, FieldQty: 8, FieldPrice: 9, FieldNote: 10, FieldSource: 11}

// Column returns the index of the column mapped onto f, and false when f is
// unmapped.
func (m *Mapping) Column(f Field) (int, bool) {
	i, ok := fieldIndex[f]
	if !ok || m.fields[i] < 0 {
		return -1, false
	}
	return m.fields[i], true
}

// HasOrderID reports whether rows are keyed by an order-id column; without
// one they are keyed by a hash of phone, product and date, which changes when
// the seller edits any of those.
func (m *Mapping) HasOrderID() bool {
	_, ok := m.Column(FieldOrderID)
	return ok
}

// Errors of Resolve, for errors.Is.
var (
	ErrNoPhone       = errors.New("no column is mapped onto the phone")
	ErrUnknownColumn = errors.New("no such column")
	ErrBadBinding    = errors.New("invalid binding")
)

// MaxColumns bounds the columns a mapping may name (column ZZZ).
const MaxColumns = 18278

// Resolve binds spec to the header row. It fails with ErrUnknownColumn when a
// binding names neither a header nor a column letter, ErrBadBinding for an
// unknown field, a custom binding without a name or a field mapped twice, and
// ErrNoPhone when nothing is mapped onto the phone (a lead without a phone
// cannot be confirmed).
func Resolve(spec Spec, header []string) (*Mapping, error) {
	m := &Mapping{}
	for i := range m.fields {
		m.fields[i] = -1
	}
	byName := map[string]int{}
	for i, h := range header {
		k := headerKey(h)
		if _, dup := byName[k]; !dup && k != "" {
			byName[k] = i
		}
	}
	customs := map[string]bool{}
	for _, b := range spec.Bindings {
		col, err := columnOf(b.Column, byName)
		if err != nil {
			return nil, err
		}
		switch {
		case !b.Field.valid():
			return nil, fmt.Errorf("%w: unknown field %q", ErrBadBinding, b.Field)
		case b.Field == FieldCustom:
			name := strings.TrimSpace(b.Custom)
			if name == "" || len(name) > 64 {
				return nil, fmt.Errorf("%w: custom field of column %q needs a name of 1 to 64 bytes", ErrBadBinding, b.Column)
			}
			if customs[name] {
				return nil, fmt.Errorf("%w: custom field %q mapped twice", ErrBadBinding, name)
			}
			customs[name] = true
			m.custom = append(m.custom, customColumn{name: name, col: col})
		default:
			i := fieldIndex[b.Field]
			if m.fields[i] >= 0 {
				return nil, fmt.Errorf("%w: field %s mapped twice", ErrBadBinding, b.Field)
			}
			m.fields[i] = col
		}
		m.width = max(m.width, col+1)
	}
	if _, ok := m.Column(FieldPhone); !ok {
		return nil, ErrNoPhone
	}
	return m, nil
}

func columnOf(ref string, byName map[string]int) (int, error) {
	if i, ok := byName[headerKey(ref)]; ok && strings.TrimSpace(ref) != "" {
		return i, nil
	}
	if i, ok := letterIndex(strings.TrimSpace(ref)); ok {
		return i, nil
	}
	return 0, fmt.Errorf("%w: %q is neither a header nor a column letter", ErrUnknownColumn, ref)
}

// letterIndex reads a column letter ("A" → 0, "AA" → 26), up to "ZZZ".
func letterIndex(s string) (int, bool) {
	if s == "" || len(s) > 3 {
		return 0, false
	}
	n := 0
	for _, r := range s {
		r = unicode.ToUpper(r)
		if r < 'A' || r > 'Z' {
			return 0, false
		}
		n = n*26 + int(r-'A'+1)
	}
	return n - 1, true
}

// ColumnLetter is the inverse of a column letter: 0 → "A", 26 → "AA".
func ColumnLetter(i int) string {
	var b []byte
	for i++; i > 0; i = (i - 1) / 26 {
		b = append([]byte{byte('A' + (i-1)%26)}, b...)
	}
	return string(b)
}

// headerKey folds a header for matching: lower case, without accents,
// tashkeel, punctuation or spaces ("N° Commande" → "ncommande").
func headerKey(s string) string {
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

// synonyms are the header names sellers use, folded by headerKey.
var synonyms = map[Field][]string{
	FieldOrderID: {"ncommande", "numcommande", "numerocommande", "commande", "idcommande", "orderid", "order", "ordernumber",
		"orderno", "ref", "reference", "refcommande", "id", "رقمالطلب", "الطلب", "رقمالطلبية"},
	FieldDate: {"date", "datecommande", "orderdate", "createdat", "dateajout", "التاريخ", "تاريخ", "تاريخالطلب"},
	FieldName: {"nomcomplet", "nom", "nomclient", "client", "fullname", "name", "customer", "customername", "prenomnom",
		"nometprenom", "الاسم", "الاسمالكامل", "اسمالزبون", "الزبون", "الاسموالنسب"},
	FieldPhone: {"telephone", "tel", "phone", "phonenumber", "mobile", "gsm", "numero", "numerotelephone", "portable",
		"الهاتف", "رقمالهاتف", "هاتف", "التيليفون"},
	FieldCity:    {"ville", "city", "المدينة", "مدينة"},
	FieldAddress: {"adresse", "address", "adressecomplete", "shippingaddress", "العنوان", "عنوان"},
	FieldProduct: {"produit", "product", "article", "productname", "nomproduit", "المنتج", "منتج", "السلعة"},
	FieldSKU:     {"sku", "codeproduit", "productcode"},
	FieldQty:     {"qte", "quantite", "qty", "quantity", "الكمية", "كمية"},
	FieldPrice: {"prix", "price", "total", "montant", "prixtotal", "totalprice", "cod", "amount", "السعر", "الثمن",
		"المبلغ", "ثمن"},
	FieldNote:   {"remarque", "remarques", "note", "notes", "commentaire", "comment", "observation", "ملاحظة", "ملاحظات"},
	FieldSource: {"source", "canal", "channel", "المصدر"},
}

var synonymField = func() map[string]Field {
	out := map[string]Field{}
	for f, names := range synonyms {
		for _, n := range names {
			out[n] = f
		}
	}
	return out
}()

// Suggest proposes a mapping for a header row: each header a known French,
// English or Arabic name of a lead field maps onto that field (the first such
// column wins), and every other non-empty header becomes a custom field of
// the same name.
func Suggest(header []string) Spec {
	var spec Spec
	taken := map[Field]bool{}
	customs := map[string]bool{}
	seen := map[string]int{}
	for _, h := range header {
		seen[headerKey(h)]++
	}
	for i, h := range header {
		name := strings.TrimSpace(h)
		if name == "" {
			continue
		}
		col := name
		if seen[headerKey(name)] > 1 || headerKey(name) == "" {
			col = ColumnLetter(i) // a repeated or symbol-only header is named by its letter
		}
		if f, ok := synonymField[headerKey(name)]; ok && !taken[f] {
			taken[f] = true
			spec.Bindings = append(spec.Bindings, Binding{Field: f, Column: col})
			continue
		}
		if len(name) > 64 || customs[name] {
			continue
		}
		customs[name] = true
		spec.Bindings = append(spec.Bindings, Binding{Field: FieldCustom, Custom: name, Column: col})
	}
	return spec
}

// Validate checks a spec without a header row: known fields, named custom
// fields, nothing mapped twice, a phone column. An empty spec is valid: it
// means "use the suggested mapping". It fails with ErrBadBinding or
// ErrNoPhone.
func (s Spec) Validate() error {
	if len(s.Bindings) == 0 {
		return nil
	}
	fields := map[Field]bool{}
	customs := map[string]bool{}
	for _, b := range s.Bindings {
		switch {
		case !b.Field.valid():
			return fmt.Errorf("%w: unknown field %q", ErrBadBinding, b.Field)
		case strings.TrimSpace(b.Column) == "" || len(b.Column) > 200:
			return fmt.Errorf("%w: field %s needs a column", ErrBadBinding, b.Field)
		case b.Field == FieldCustom:
			name := strings.TrimSpace(b.Custom)
			if name == "" || len(name) > 64 || customs[name] {
				return fmt.Errorf("%w: custom field %q needs a unique name of 1 to 64 bytes", ErrBadBinding, name)
			}
			customs[name] = true
		case fields[b.Field]:
			return fmt.Errorf("%w: field %s mapped twice", ErrBadBinding, b.Field)
		}
		fields[b.Field] = true
	}
	if !fields[FieldPhone] {
		return ErrNoPhone
	}
	return nil
}
