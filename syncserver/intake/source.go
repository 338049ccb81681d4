package intake

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/xuri/excelize/v2"
)

// Record is one row as a source reads it: Num is its 1-based row number in
// the sheet or file, Ragged marks a row the source knows was cut short.
type Record struct {
	Num    int
	Cells  []string
	Ragged bool
}

// Source streams a sheet's rows after its header row. Next returns io.EOF
// after the last row.
type Source interface {
	Header() []string
	Next() (Record, error)
}

// ErrMissingHeader is returned when a file or sheet has no header row.
var ErrMissingHeader = errors.New("the first row (the header) is empty")

// CSV reads a CSV file: comma, semicolon or tab separated (guessed from the
// header line), UTF-8 with or without a byte-order mark, quotes as
// spreadsheets write them. Rows with fewer fields than the header are
// Ragged; extra fields are kept.
type CSV struct {
	r      *csv.Reader
	header []string
}

// NewCSV reads the header row. It fails with ErrMissingHeader for an empty
// file or a blank first line, and with the csv error for a malformed header.
func NewCSV(r io.Reader) (*CSV, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	if bom, err := br.Peek(3); err == nil && bytes.Equal(bom, []byte("\xef\xbb\xbf")) {
		_, _ = br.Discard(3)
	}
	first, _ := br.Peek(4096)
	line, _, _ := bytes.Cut(first, []byte("\n"))
	cr := csv.NewReader(br)
	cr.Comma = guessComma(line)
	cr.FieldsPerRecord = -1
	cr.LazyQuotes = true
	header, err := cr.Read()
	if errors.Is(err, io.EOF) || err == nil && blank(header) {
		return nil, ErrMissingHeader
	}
	if err != nil {
		return nil, fmt.Errorf("read csv header: %w", err)
	}
	return &CSV{r: cr, header: header}, nil
}

func guessComma(line []byte) rune {
	best, n := ',', bytes.Count(line, []byte(","))
	for _, c := range []rune{';', '\t'} {
		if k := bytes.Count(line, []byte(string(c))); k > n {
			best, n = c, k
		}
	}
	return best
}

func blank(cells []string) bool {
	for _, c := range cells {
		if strings.TrimSpace(c) != "" {
			return false
		}
	}
	return true
}

// Header returns the header row.
func (c *CSV) Header() []string { return c.header }

// Next returns the next row. A malformed line fails with the csv error
// (*csv.ParseError, naming the line); reading may go on after it.
func (c *CSV) Next() (Record, error) {
	cells, err := c.r.Read()
	if pe := (*csv.ParseError)(nil); errors.As(err, &pe) {
		return Record{Num: pe.StartLine}, err
	}
	if err != nil {
		return Record{}, err
	}
	line, _ := c.r.FieldPos(0)
	return Record{Num: line, Cells: cells, Ragged: len(cells) < len(c.header)}, nil
}

// XLSX reads the first sheet of an XLSX workbook row by row (excelize's
// streaming reader: memory stays bounded by one row, not the sheet). Cells
// hold their shown values; formulas are never evaluated.
type XLSX struct {
	f      *excelize.File
	rows   *excelize.Rows
	header []string
	num    int
}

// NewXLSX opens the workbook and reads the header row of its first sheet. It
// fails for a file that is not a workbook, and with ErrMissingHeader when the
// first row is empty. Close releases the temporary files excelize keeps.
func NewXLSX(r io.Reader) (*XLSX, error) {
	f, err := excelize.OpenReader(r)
	if err != nil {
		return nil, fmt.Errorf("open xlsx: %w", err)
	}
	x := &XLSX{f: f}
	sheets := f.GetSheetList()
	if len(sheets) == 0 {
		_ = f.Close()
		return nil, ErrMissingHeader
	}
	if x.rows, err = f.Rows(sheets[0]); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("read sheet %q: %w", sheets[0], err)
	}
	if !x.rows.Next() {
		_ = x.Close()
		return nil, ErrMissingHeader
	}
	x.num = 1
	if x.header, err = x.rows.Columns(); err != nil || blank(x.header) {
		_ = x.Close()
		if err == nil {
			err = ErrMissingHeader
		}
		return nil, err
	}
	return x, nil
}

// Header returns the header row.
func (x *XLSX) Header() []string { return x.header }

// Next returns the next row. XLSX omits trailing empty cells like Sheets, so
// no row is Ragged.
func (x *XLSX) Next() (Record, error) {
	if !x.rows.Next() {
		if err := x.rows.Error(); err != nil {
			return Record{}, err
		}
		return Record{}, io.EOF
	}
	x.num++
	cells, err := x.rows.Columns()
	return Record{Num: x.num, Cells: cells}, err
}

// Close releases the workbook.
func (x *XLSX) Close() error {
	if x.rows != nil {
		_ = x.rows.Close()
	}
	return x.f.Close()
}
