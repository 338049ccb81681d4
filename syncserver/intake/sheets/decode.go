package sheets

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"unicode/utf8"
)

// decodeBatch reads a values.batchGet response: each value range's values
// as text, the way cellsOf turns them into text. A sync decodes a whole
// sheet this way, so it reads the values straight into strings, where
// encoding/json would build an interface value for every cell first (a
// third of a re-sync's CPU). Anything it does not expect — a cell that is
// an array or an object, a key spelt in another case, escapes it does not
// take apart, invalid JSON — it leaves to encoding/json, so the answer is
// always encoding/json's.
func decodeBatch(body []byte) ([][][]string, error) {
	if out, ok := fastBatch(body); ok {
		return out, nil
	}
	return slowBatch(body)
}

// slowBatch is decodeBatch through encoding/json.
func slowBatch(body []byte) ([][][]string, error) {
	var resp struct {
		ValueRanges []*struct {
			Values [][]any `json:"values"`
		} `json:"valueRanges"`
	}
	if err := json.Unmarshal(body, &resp); err != nil {
		return nil, err
	}
	out := make([][][]string, len(resp.ValueRanges))
	for i, vr := range resp.ValueRanges {
		out[i] = [][]string{}
		if vr != nil {
			out[i] = cellsOf(vr.Values)
		}
	}
	return out, nil
}

// errDecline makes the fast decoder give the body to encoding/json.
var errDecline = errors.New("not for the fast decoder")

type scan struct {
	b []byte
	i int
	// The cells' text, one after the other, becomes one string that every
	// cell is a part of: one allocation for all the cells instead of one
	// each (a batch of 10,000 rows has 120,000).
	// sizes are the cells' lengths in that text, in order.
	text  []byte
	sizes []int32
}

func fastBatch(body []byte) (out [][][]string, ok bool) {
	s := &scan{b: body, text: make([]byte, 0, len(body)), sizes: make([]int32, 0, len(body)/8)}
	defer func() {
		if !ok {
			return
		}
		all, off, n := string(s.text), 0, 0
		for _, rows := range out {
			for _, cells := range rows {
				for i := range cells {
					cells[i] = all[off : off+int(s.sizes[n])]
					off += int(s.sizes[n])
					n++
				}
			}
		}
	}()
	seen := false
	err := s.object(func(key string) error {
		if key != "valueRanges" {
			if keyLike(key, "valueRanges") {
				return errDecline
			}
			return s.skip()
		}
		if seen {
			return errDecline // encoding/json merges repeated keys
		}
		seen = true
		if s.null() {
			return nil
		}
		return s.array(func() error {
			rows := [][]string{}
			if s.null() {
				out = append(out, rows)
				return nil
			}
			values := false
			err := s.object(func(key string) error {
				if key != "values" {
					if keyLike(key, "values") {
						return errDecline
					}
					return s.skip()
				}
				if values {
					return errDecline
				}
				values = true
				var err error
				rows, err = s.rows()
				return err
			})
			out = append(out, rows)
			return err
		})
	})
	if err != nil {
		return nil, false
	}
	s.ws()
	return out, s.i == len(s.b)
}

// keyLike reports whether encoding/json would match key to the field name
// (it ignores case).
func keyLike(key, name string) bool { return bytes.EqualFold([]byte(key), []byte(name)) }

// rows reads the values: null or an array of rows, each null or an array of
// cells.
func (s *scan) rows() ([][]string, error) {
	if s.null() {
		return [][]string{}, nil
	}
	rows := [][]string{}
	err := s.array(func() error {
		if s.null() {
			rows = append(rows, []string{})
			return nil
		}
		first := len(s.sizes)
		err := s.array(func() error {
			off := len(s.text)
			err := s.cell()
			s.sizes = append(s.sizes, int32(len(s.text)-off))
			return err
		})
		rows = append(rows, make([]string, len(s.sizes)-first))
		return err
	})
	return rows, err
}

func (s *scan) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// peek skips white space and returns the next byte (0 at the end).
func (s *scan) peek() byte {
	s.ws()
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

func (s *scan) literal(word string) bool {
	if bytes.HasPrefix(s.b[s.i:], []byte(word)) {
		s.i += len(word)
		return true
	}
	return false
}

func (s *scan) null() bool { return s.peek() == 'n' && s.literal("null") }

// object reads an object, calling member with the scanner at each key's value.
func (s *scan) object(member func(key string) error) error {
	if s.peek() != '{' {
		return errDecline
	}
	s.i++
	if s.peek() == '}' {
		s.i++
		return nil
	}
	for {
		if s.peek() != '"' {
			return errDecline
		}
		key, err := s.str()
		if err != nil {
			return err
		}
		if s.peek() != ':' {
			return errDecline
		}
		s.i++
		if err := member(key); err != nil {
			return err
		}
		switch s.peek() {
		case ',':
			s.i++
		case '}':
			s.i++
			return nil
		default:
			return errDecline
		}
	}
}

// array reads an array, calling elem with the scanner at each element.
func (s *scan) array(elem func() error) error {
	if s.peek() != '[' {
		return errDecline
	}
	s.i++
	if s.peek() == ']' {
		s.i++
		return nil
	}
	for {
		if err := elem(); err != nil {
			return err
		}
		switch s.peek() {
		case ',':
			s.i++
		case ']':
			s.i++
			return nil
		default:
			return errDecline
		}
	}
}

// str reads a string. One with escapes or invalid UTF-8 (rare in a sheet:
// quotes, line breaks) is unquoted by encoding/json.
func (s *scan) str() (string, error) {
	raw, open, plain, err := s.span()
	switch {
	case err != nil:
		return "", err
	case plain:
		return string(raw), nil
	}
	return s.unquote(open)
}

// appendStr reads a string into the cells' text, as str does, without
// allocating one when it needs no unquoting.
func (s *scan) appendStr() error {
	raw, open, plain, err := s.span()
	switch {
	case err != nil:
		return err
	case plain:
		s.text = append(s.text, raw...)
		return nil
	}
	v, err := s.unquote(open)
	s.text = append(s.text, v...)
	return err
}

// span moves past the string at s.i (its opening quote). plain says its
// bytes, raw, are its value: no escapes, valid UTF-8. Otherwise the string
// from open to s.i is for unquote.
func (s *scan) span() (raw []byte, open int, plain bool, err error) {
	open = s.i
	s.i++
	start := s.i
	ascii := true
	for ; s.i < len(s.b); s.i++ {
		c := s.b[s.i]
		switch {
		case c == '"':
			raw = s.b[start:s.i]
			s.i++
			return raw, open, ascii || utf8.Valid(raw), nil
		case c == '\\':
			s.i = open
			if err := s.skip(); err != nil {
				return nil, open, false, err
			}
			return nil, open, false, nil
		case c < 0x20:
			return nil, open, false, errDecline
		case c >= 0x80:
			ascii = false
		}
	}
	return nil, open, false, errDecline
}

// unquote unquotes the string from open to s.i with encoding/json.
func (s *scan) unquote(open int) (string, error) {
	var v string
	if json.Unmarshal(s.b[open:s.i], &v) != nil {
		return "", errDecline
	}
	return v, nil
}

// escape checks the escape at s.i (a backslash) and moves s.i to its last
// byte.
func (s *scan) escape() bool {
	if s.i+1 >= len(s.b) {
		return false
	}
	switch s.b[s.i+1] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		s.i++
		return true
	case 'u':
		if s.i+5 >= len(s.b) {
			return false
		}
		for _, h := range s.b[s.i+2 : s.i+6] {
			if !('0' <= h && h <= '9' || 'a' <= h && h <= 'f' || 'A' <= h && h <= 'F') {
				return false
			}
		}
		s.i += 5
		return true
	}
	return false
}

// cell reads a cell and appends its text as cellsOf writes it: a string as
// is, a number as encoding/json reads it (a float64) formatted, a boolean as
// true or false, null as empty.
func (s *scan) cell() error {
	switch c := s.peek(); {
	case c == '"':
		return s.appendStr()
	case c == 't' && s.literal("true"):
		s.text = append(s.text, "true"...)
		return nil
	case c == 'f' && s.literal("false"):
		s.text = append(s.text, "false"...)
		return nil
	case c == 'n' && s.literal("null"):
		return nil
	case c == '-' || c >= '0' && c <= '9':
		n := s.number()
		if n == nil {
			return errDecline
		}
		f, err := strconv.ParseFloat(string(n), 64)
		if err != nil {
			return errDecline
		}
		s.text = strconv.AppendFloat(s.text, f, 'f', -1, 64)
		return nil
	}
	return errDecline
}

// number reads a JSON number and returns its text, or nil when the text is
// not one.
func (s *scan) number() []byte {
	start := s.i
	digits := func() int {
		n := 0
		for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
			s.i++
			n++
		}
		return n
	}
	if s.b[s.i] == '-' {
		s.i++
	}
	if s.i < len(s.b) && s.b[s.i] == '0' {
		s.i++
	} else if digits() == 0 {
		return nil
	}
	if s.i < len(s.b) && s.b[s.i] == '.' {
		s.i++
		if digits() == 0 {
			return nil
		}
	}
	if s.i < len(s.b) && (s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		s.i++
		if s.i < len(s.b) && (s.b[s.i] == '+' || s.b[s.i] == '-') {
			s.i++
		}
		if digits() == 0 {
			return nil
		}
	}
	return s.b[start:s.i]
}

// skip passes over any value (what a response holds beside the values: the
// spreadsheet's id, each range's A1 name and dimension).
func (s *scan) skip() error {
	switch c := s.peek(); {
	case c == '"':
		// Escapes are only checked here: the string is not kept.
		s.i++
		for ; s.i < len(s.b); s.i++ {
			switch c := s.b[s.i]; {
			case c == '\\':
				if !s.escape() {
					return errDecline
				}
			case c == '"':
				s.i++
				return nil
			case c < 0x20:
				return errDecline
			}
		}
		return errDecline
	case c == '{':
		return s.object(func(string) error { return s.skip() })
	case c == '[':
		return s.array(s.skip)
	case c == 't' && s.literal("true"), c == 'f' && s.literal("false"), c == 'n' && s.literal("null"):
		return nil
	case c == '-' || c >= '0' && c <= '9':
		if s.number() == nil {
			return errDecline
		}
		return nil
	}
	return errDecline
}
