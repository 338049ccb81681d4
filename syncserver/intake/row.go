package intake

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/leadify/leadify/shared/city"
	"github.com/leadify/leadify/shared/money"
	"github.com/leadify/leadify/shared/phone"
)

// Reason says why a row was rejected.
type Reason string

// The rejection reasons.
const (
	ReasonNone          Reason = ""
	ReasonMissingPhone  Reason = "missing_phone"
	ReasonInvalidPhone  Reason = "invalid_phone"
	ReasonUnknownCity   Reason = "unknown_city"
	ReasonBadPrice      Reason = "unparseable_price"
	ReasonTruncated     Reason = "truncated_row"
	ReasonDuplicateKey  Reason = "duplicate_row_key"
	ReasonBadQuantity   Reason = "invalid_quantity"
	ReasonEmpty         Reason = "empty_row"
	ReasonTooLongCell   Reason = "cell_too_long"
	ReasonInvalidText   Reason = "invalid_text"
	ReasonMissingHeader Reason = "missing_header"
)

// MaxCellBytes bounds one cell's text; Sheets itself allows 50,000 characters.
const MaxCellBytes = 50000

// Cell is one mapped cell: the seller's text, what it was read as, and why it
// could not be read (empty when it could).
type Cell struct {
	Field  Field
	Custom string // the custom field's name when Field is FieldCustom
	Column int
	Raw    string
	Value  string // the parsed value in canonical form ("+212612345678", "casablanca", "249.00")
	Error  string
	// Warning notes a value that was read but looks odd (a phone in an
	// unlisted range); the row is still imported.
	Warning string
}

// Row is one parsed row. Num is the row's number in the sheet (1-based, the
// header included) so reports point where the seller looks.
type Row struct {
	Num      int
	Cells    []Cell
	OrderID  string
	Date     time.Time // zero when blank or unreadable
	DateRaw  string
	Name     string
	Phone    phone.Number
	City     city.City // zero when blank
	CityRaw  string
	Address  string
	Product  string
	SKU      string
	Qty      int32
	Price    money.Amount // the row's total (what the carrier collects)
	Note     string
	Source   string
	Custom   map[string]string
	Key      string // "id:<order id>" or "h:<hash of phone, product, date>"
	Checksum [16]byte
	Reject   Reason
	Detail   string // what the rejection is about, for the seller
}

// Accepted reports whether the row can become a lead.
func (r *Row) Accepted() bool { return r.Reject == ReasonNone }

// Parse reads one row through the mapping. ragged marks a row the source
// knows is cut short (a CSV line with fewer fields than the header); Sheets
// omit trailing empty cells, so a short sheet row is not truncated, its
// missing cells are blank. Parse never fails: a row it cannot use
// comes back with Reject set and every cell's outcome.
func (m *Mapping) Parse(num int, cells []string, ragged bool) Row {
	return m.parse(num, cells, ragged, nil)
}

// parse is Parse, given the cells' checksum when already computed.
func (m *Mapping) parse(num int, cells []string, ragged bool, sum *[16]byte) Row {
	r := Row{Num: num}
	blank := true
	for _, c := range cells {
		if strings.TrimSpace(c) != "" {
			blank = false
			break
		}
	}
	if blank {
		r.Reject = ReasonEmpty
		return r
	}
	get := func(f Field) (string, int, bool) {
		col, ok := m.Column(f)
		if !ok {
			return "", -1, false
		}
		if col >= len(cells) {
			return "", col, true
		}
		return cells[col], col, true
	}
	// One allocation for the row's cells (appending one by one grew and
	// copied the slice five times a row).
	r.Cells = make([]Cell, 0, len(Fields)+len(m.custom))
	add := func(f Field, custom string, col int, raw string) *Cell {
		r.Cells = append(r.Cells, Cell{Field: f, Custom: custom, Column: col, Raw: raw})
		return &r.Cells[len(r.Cells)-1]
	}
	reject := func(reason Reason, detail string) {
		if r.Reject == ReasonNone {
			r.Reject, r.Detail = reason, detail
		}
	}
	if ragged {
		reject(ReasonTruncated, "the row has "+strconv.Itoa(len(cells))+" cells, fewer than the header")
	}

	for _, f := range Fields {
		raw, col, ok := get(f)
		if !ok {
			continue
		}
		c := add(f, "", col, raw)
		if len(raw) > MaxCellBytes {
			c.Error = "longer than " + strconv.Itoa(MaxCellBytes) + " bytes"
			reject(ReasonTooLongCell, "column "+ColumnLetter(col))
			continue
		}
		if !utf8.ValidString(raw) {
			c.Error = "not valid UTF-8"
			reject(ReasonInvalidText, "column "+ColumnLetter(col))
			continue
		}
		text := strings.TrimSpace(raw)
		switch f {
		case FieldOrderID:
			r.OrderID, c.Value = text, text
		case FieldDate:
			r.DateRaw = raw
			if text != "" {
				if d, err := ParseDate(text); err != nil {
					c.Error = err.Error()
				} else {
					r.Date, c.Value = d, d.Format(time.RFC3339)
				}
			}
		case FieldName:
			r.Name, c.Value = text, text
		case FieldPhone:
			n, err := phone.Parse(raw)
			r.Phone = n
			c.Value = n.E164
			switch {
			case errors.Is(err, phone.ErrEmpty):
				c.Error = "empty"
				reject(ReasonMissingPhone, "")
			case errors.Is(err, phone.ErrInvalid) && n.IsMoroccan():
				// A Moroccan number of the right length in a range the
				// metadata does not list yet (new 07 blocks): agents can
				// still call it.
				c.Warning = "not in a known Moroccan range"
			case err != nil:
				c.Error = err.Error()
				reject(ReasonInvalidPhone, raw)
			}
		case FieldCity:
			r.CityRaw = raw
			if text != "" {
				ct, err := city.Resolve(text)
				if err != nil {
					c.Error = err.Error()
					reject(ReasonUnknownCity, err.Error())
				} else {
					r.City, c.Value = ct, ct.ID
				}
			}
		case FieldAddress:
			r.Address, c.Value = text, text
		case FieldProduct:
			r.Product, c.Value = text, text
		case FieldSKU:
			r.SKU, c.Value = text, text
		case FieldQty:
			r.Qty = 1
			if text != "" {
				q, err := parseQty(text)
				if err != nil {
					c.Error = err.Error()
					reject(ReasonBadQuantity, raw)
				} else {
					r.Qty = q
				}
			}
			c.Value = strconv.Itoa(int(r.Qty))
		case FieldPrice:
			if text != "" {
				a, err := money.Parse(text)
				if err != nil {
					c.Error = err.Error()
					reject(ReasonBadPrice, raw)
				} else {
					r.Price, c.Value = a, a.Plain()
				}
			}
		case FieldNote:
			r.Note, c.Value = text, text
		case FieldSource:
			r.Source, c.Value = text, text
		}
	}
	if r.Qty == 0 {
		r.Qty = 1
	}
	for _, cc := range m.custom {
		raw := ""
		if cc.col < len(cells) {
			raw = cells[cc.col]
		}
		c := add(FieldCustom, cc.name, cc.col, raw)
		if len(raw) > MaxCellBytes || !utf8.ValidString(raw) {
			c.Error = "too long or not UTF-8"
			reject(ReasonInvalidText, "column "+ColumnLetter(cc.col))
			continue
		}
		if v := strings.TrimSpace(raw); v != "" {
			c.Value = v
			if r.Custom == nil {
				r.Custom = map[string]string{}
			}
			r.Custom[cc.name] = v
		}
	}
	if sum != nil {
		r.Checksum = *sum
	} else {
		r.Checksum = m.checksum(cells)
	}
	r.Key = m.key(&r)
	return r
}

// checksum hashes the mapped cells' text, each with its length, in mapping
// order: any edit of a mapped cell changes it, edits elsewhere do not.
func (m *Mapping) checksum(cells []string) [16]byte {
	// The same bytes as hashing each length and cell in turn, hashed in
	// one call from one buffer: no hash object, no copy of each cell.
	var stack [1024]byte
	buf := stack[:0]
	add := func(col int) {
		raw := ""
		if col < len(cells) {
			raw = cells[col]
		}
		buf = binary.LittleEndian.AppendUint64(buf, uint64(len(raw)))
		buf = append(buf, raw...)
	}
	for _, f := range Fields {
		if col, ok := m.Column(f); ok {
			add(col)
		}
	}
	for _, cc := range m.custom {
		add(cc.col)
	}
	sum := sha256.Sum256(buf)
	var out [16]byte
	copy(out[:], sum[:16])
	return out
}

// Identify returns a row's key and checksum without parsing it, when the
// key is its order id: a re-sync finds unchanged rows this way and never
// parses them. ok is false when the row must be parsed to be keyed.
func (m *Mapping) Identify(cells []string, ragged bool) (key string, checksum [16]byte, ok bool) {
	key, ok = m.idKey(cells, ragged)
	if !ok {
		return "", checksum, false
	}
	return key, m.checksum(cells), true
}

// idKey is Identify's key alone.
func (m *Mapping) idKey(cells []string, ragged bool) (string, bool) {
	col, has := m.Column(FieldOrderID)
	if !has || ragged || col >= len(cells) {
		return "", false
	}
	id := strings.TrimSpace(cells[col])
	if id == "" {
		return "", false
	}
	return "id:" + id, true
}

// key is the row's identity: its order id when the sheet has one, else a
// hash of what identifies an order — phone, product and date — so a row keeps
// its key when the seller sorts or inserts rows.
func (m *Mapping) key(r *Row) string {
	if m.HasOrderID() && r.OrderID != "" {
		return "id:" + r.OrderID
	}
	h := sha256.New()
	for _, s := range []string{r.Phone.E164, strings.ToLower(r.Product), strings.TrimSpace(r.DateRaw)} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return "h:" + hex.EncodeToString(h.Sum(nil)[:16])
}

// parseQty reads a quantity: a whole number from 1 to 9999, in Western or
// Arabic-Indic digits, with an optional "x" or "pcs" around it.
func parseQty(s string) (int32, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	t = strings.TrimSuffix(strings.TrimPrefix(t, "x"), "x")
	t = strings.TrimSpace(strings.TrimSuffix(strings.TrimSuffix(t, "pcs"), "pc"))
	var b strings.Builder
	for _, r := range t {
		switch {
		case r >= '٠' && r <= '٩':
			b.WriteRune('0' + (r - '٠'))
		case r >= '۰' && r <= '۹':
			b.WriteRune('0' + (r - '۰'))
		default:
			b.WriteRune(r)
		}
	}
	n, err := strconv.Atoi(b.String())
	if err != nil || n < 1 || n > 9999 {
		return 0, errors.New("not a quantity from 1 to 9999")
	}
	return int32(n), nil
}
