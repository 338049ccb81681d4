// Package sheetstest is a fake Google Sheets API v4 for tests and the demo:
// values.get and values.batchGet over sheets loaded from CSV, with the real
// response shapes (trailing empty cells and rows omitted, no "values" key
// when a range is empty, errors as {"error":{code,message,status}}), a read
// quota answered with 429 RESOURCE_EXHAUSTED, and slow answers on demand.
package sheetstest

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
)

// Server is a running fake. Point the client at URL + "/".
type Server struct {
	*httptest.Server

	mu      sync.Mutex
	books   map[string]map[string]grid // spreadsheet → sheet → cells
	fail429 int                        // answer the next n reads with 429
	quota   int                        // reads allowed per window; 0 means unlimited
	window  time.Duration
	used    int
	start   time.Time
	delay   time.Duration
	outage  int // reads from this one on (1-based) fail with 503; 0: none
	reads   int
	ranges  int
	hook    func(Read)
}

// Read is one read request as the fake received it.
type Read struct {
	N      int      // 1-based, counting every request
	Batch  bool     // values.batchGet (else values.get)
	Ranges []string // the A1 ranges asked for
}

// OnRead calls fn with every well-formed read request before it is answered
// (fn may block: the answer waits). nil removes it.
func (s *Server) OnRead(fn func(Read)) { s.mu.Lock(); s.hook = fn; s.mu.Unlock() }

// New starts a fake; it stops when the test's cleanup runs Close.
func New() *Server {
	s := &Server{books: map[string]map[string]grid{}, window: time.Minute, start: time.Now()}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// Listen starts a fake on addr ("127.0.0.1:8091"): the demo's, which the
// server is pointed at by address. Close stops it.
func Listen(addr string) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("fake sheets: %w", err)
	}
	s := &Server{books: map[string]map[string]grid{}, window: time.Minute, start: time.Now()}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	_ = s.Server.Listener.Close()
	s.Server.Listener = ln
	s.Server.Start()
	return s, nil
}

// SetSheet stores rows as the sheet's cells (row-major, ragged allowed).
func (s *Server) SetSheet(spreadsheet, sheet string, rows [][]string) {
	width := 0
	for _, row := range rows {
		width = max(width, len(row))
	}
	s.setGrid(spreadsheet, sheet, grid{n: len(rows), width: width, row: func(i int) []string { return rows[i] }})
}

// SetSheetFunc stores a sheet of n rows whose i-th row (0-based) row makes
// when it is read, at most width cells: a big sheet that costs the fake no
// memory (benchmarks measuring the reader's).
func (s *Server) SetSheetFunc(spreadsheet, sheet string, n, width int, row func(i int) []string) {
	s.setGrid(spreadsheet, sheet, grid{n: n, width: width, row: row})
}

func (s *Server) setGrid(spreadsheet, sheet string, g grid) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.books[spreadsheet] == nil {
		s.books[spreadsheet] = map[string]grid{}
	}
	s.books[spreadsheet][sheet] = g
}

// grid is a sheet's cells: n rows, the widest width cells long.
type grid struct {
	n, width int
	row      func(i int) []string
}

// LoadCSV stores a CSV file as a sheet, each record on the row of its line
// (blank lines stay blank rows, as they would in the sheet).
func (s *Server) LoadCSV(spreadsheet, sheet string, r io.Reader) error {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.LazyQuotes = true
	var rows [][]string
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("load csv: %w", err)
		}
		line, _ := cr.FieldPos(0)
		for len(rows) < line-1 {
			rows = append(rows, nil)
		}
		rows = append(rows, rec)
	}
	s.SetSheet(spreadsheet, sheet, rows)
	return nil
}

// Fail429 answers the next n reads with 429 RESOURCE_EXHAUSTED.
func (s *Server) Fail429(n int) { s.mu.Lock(); s.fail429 = n; s.mu.Unlock() }

// SetQuota allows n reads per window (Google: about 60 a minute per user);
// reads beyond it get 429 until the window rolls over. n = 0 lifts it.
func (s *Server) SetQuota(n int, window time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.quota, s.window, s.used, s.start = n, window, 0, time.Now()
}

// FailFrom makes every read from the n-th on (counting all reads so far)
// fail with 503 UNAVAILABLE, as in an outage; n = 0 ends the outage.
func (s *Server) FailFrom(n int) { s.mu.Lock(); s.outage = n; s.mu.Unlock() }

// SetDelay makes every answer wait d first.
func (s *Server) SetDelay(d time.Duration) { s.mu.Lock(); s.delay = d; s.mu.Unlock() }

// Reads returns how many read requests were answered (errors included) and
// how many ranges they asked for.
func (s *Server) Reads() (requests, ranges int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reads, s.ranges
}

type apiError struct {
	Error struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
		Status  string `json:"status"`
	} `json:"error"`
}

func writeError(w http.ResponseWriter, code int, status, msg string) {
	var e apiError
	e.Error.Code, e.Error.Message, e.Error.Status = code, msg, status
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(e)
}

// ValueRange is the API's ValueRange; Values is omitted when empty.
type ValueRange struct {
	Range          string     `json:"range"`
	MajorDimension string     `json:"majorDimension"`
	Values         [][]string `json:"values,omitempty"`
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.reads++
	num := s.reads
	delay := s.delay
	down := s.outage > 0 && s.reads >= s.outage
	throttled := false
	if s.fail429 > 0 {
		s.fail429--
		throttled = true
	}
	if s.quota > 0 {
		if time.Since(s.start) >= s.window {
			s.start, s.used = time.Now(), 0
		}
		s.used++
		if s.used > s.quota {
			throttled = true
		}
	}
	s.mu.Unlock()
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
	}
	if down {
		writeError(w, http.StatusServiceUnavailable, "UNAVAILABLE", "The service is currently unavailable.")
		return
	}
	if throttled {
		writeError(w, http.StatusTooManyRequests, "RESOURCE_EXHAUSTED",
			"Quota exceeded for quota metric 'Read requests' and limit 'Read requests per minute per user' of service 'sheets.googleapis.com'.")
		return
	}
	if r.Method != http.MethodGet {
		writeError(w, http.StatusMethodNotAllowed, "INVALID_ARGUMENT", "only reads are faked")
		return
	}
	rest, ok := strings.CutPrefix(r.URL.EscapedPath(), "/v4/spreadsheets/")
	if !ok {
		writeError(w, http.StatusNotFound, "NOT_FOUND", "Requested entity was not found.")
		return
	}
	idEsc, op, _ := strings.Cut(rest, "/")
	id, _ := url.PathUnescape(idEsc)
	s.mu.Lock()
	book, found := s.books[id]
	s.mu.Unlock()
	if !found {
		writeError(w, http.StatusNotFound, "NOT_FOUND", "Requested entity was not found.")
		return
	}
	var ranges []string
	batch := false
	switch {
	case op == "values:batchGet":
		batch = true
		ranges = r.URL.Query()["ranges"]
		if len(ranges) == 0 {
			writeError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "Must specify at least one range.")
			return
		}
	case strings.HasPrefix(op, "values/"):
		rg, err := url.PathUnescape(strings.TrimPrefix(op, "values/"))
		if err != nil {
			writeError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "Unable to parse range: "+op)
			return
		}
		ranges = []string{rg}
	default:
		writeError(w, http.StatusNotFound, "NOT_FOUND", "Requested entity was not found.")
		return
	}
	s.mu.Lock()
	s.ranges += len(ranges)
	hook := s.hook
	s.mu.Unlock()
	if hook != nil {
		hook(Read{N: num, Batch: batch, Ranges: ranges})
	}
	out := make([]ValueRange, 0, len(ranges))
	for _, rg := range ranges {
		vr, err := read(book, rg)
		if err != nil {
			writeError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "U"+err.Error()[1:]) // Google capitalises
			return
		}
		out = append(out, vr)
	}
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	if batch {
		_ = json.NewEncoder(w).Encode(struct {
			SpreadsheetID string       `json:"spreadsheetId"`
			ValueRanges   []ValueRange `json:"valueRanges"`
		}{id, out})
		return
	}
	_ = json.NewEncoder(w).Encode(out[0])
}

// read answers one A1 range: "Sheet1", "Sheet1!A1:D5", "'My Sheet'!A:Z",
// "Sheet1!2:100".
func read(book map[string]grid, rg string) (ValueRange, error) {
	sheet, cells := rg, ""
	if i := strings.LastIndex(rg, "!"); i >= 0 {
		sheet, cells = rg[:i], rg[i+1:]
	}
	if strings.HasPrefix(sheet, "'") && strings.HasSuffix(sheet, "'") && len(sheet) >= 2 {
		sheet = strings.ReplaceAll(sheet[1:len(sheet)-1], "''", "'")
	}
	rows, ok := book[sheet]
	if !ok {
		return ValueRange{}, fmt.Errorf("unable to parse range: %s", rg)
	}
	c1, r1, c2, r2 := 0, 1, 1<<20, 1<<30
	if cells != "" {
		a, b, _ := strings.Cut(cells, ":")
		if b == "" {
			b = a
		}
		var okA, okB bool
		c1, r1, okA = cellRef(a, 0, 1)
		c2, r2, okB = cellRef(b, 1<<20, 1<<30)
		if !okA || !okB || c2 < c1 || r2 < r1 {
			return ValueRange{}, fmt.Errorf("unable to parse range: %s", rg)
		}
	}
	vr := ValueRange{MajorDimension: "ROWS"}
	for r := r1; r <= r2 && r <= rows.n; r++ {
		row := rows.row(r - 1)
		var out []string
		for c := c1; c <= c2 && c < len(row); c++ {
			out = append(out, row[c])
		}
		for len(out) > 0 && out[len(out)-1] == "" { // trailing empty cells are omitted
			out = out[:len(out)-1]
		}
		if out == nil {
			out = []string{}
		}
		vr.Values = append(vr.Values, out)
	}
	for len(vr.Values) > 0 && len(vr.Values[len(vr.Values)-1]) == 0 { // and trailing empty rows
		vr.Values = vr.Values[:len(vr.Values)-1]
	}
	lastRow := min(r2, max(rows.n, r1))
	lastCol := min(c2, max(rows.width-1, c1))
	vr.Range = fmt.Sprintf("%s!%s%d:%s%d", quoteSheet(sheet), letters(c1), r1, letters(lastCol), lastRow)
	return vr, nil
}

// cellRef reads "B12", "B" or "12"; missing parts take the defaults.
func cellRef(s string, defCol, defRow int) (col, row int, ok bool) {
	i := 0
	for i < len(s) && unicode.IsLetter(rune(s[i])) {
		i++
	}
	col, row = defCol, defRow
	if i > 0 {
		col = 0
		for _, r := range strings.ToUpper(s[:i]) {
			if r < 'A' || r > 'Z' {
				return 0, 0, false
			}
			col = col*26 + int(r-'A'+1)
		}
		col--
	}
	if i < len(s) {
		n, err := strconv.Atoi(s[i:])
		if err != nil || n < 1 {
			return 0, 0, false
		}
		row = n
	}
	return col, row, i > 0 || i < len(s)
}

func letters(i int) string {
	var b []byte
	for i++; i > 0; i = (i - 1) / 26 {
		b = append([]byte{byte('A' + (i-1)%26)}, b...)
	}
	return string(b)
}

func quoteSheet(name string) string {
	for _, r := range name {
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '_' {
			return "'" + strings.ReplaceAll(name, "'", "''") + "'"
		}
	}
	return name
}
