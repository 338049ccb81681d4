// Package sheets reads Google Sheets through the Sheets API v4
// (google.golang.org/api/sheets/v4) as an intake.Source: the header row, then
// the data in large batchGet chunks fetched as the reader needs them, so
// memory holds one chunk whatever the sheet's size. Reads over quota (HTTP
// 429 RESOURCE_EXHAUSTED) and server errors are retried with exponential
// backoff, as Google asks.
package sheets

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"google.golang.org/api/googleapi"
	"google.golang.org/api/option"
	"google.golang.org/api/option/internaloption"
	sheetsapi "google.golang.org/api/sheets/v4"
	htransport "google.golang.org/api/transport/http"

	"github.com/leadify/leadify/syncserver/intake"
)

// Backoff is the retry policy for throttled and failed reads.
type Backoff struct {
	First    time.Duration // the first wait (Google suggests 1s)
	Max      time.Duration // the longest wait (Google suggests 64s)
	Attempts int           // tries per request, the first included
}

// DefaultBackoff follows Google's advice: 1s, 2s, 4s … up to 64s, with jitter.
var DefaultBackoff = Backoff{First: time.Second, Max: 64 * time.Second, Attempts: 10}

// Client reads sheets.
type Client struct {
	svc     *sheetsapi.Service
	backoff Backoff
	// http and base make batchGet requests without the API's decoder (see
	// BatchValues): the client and endpoint the service was built with.
	http *http.Client
	base string
}

// Credentials are what the client signs in with; exactly one is set.
type Credentials struct {
	ServiceAccountJSON []byte // a service account's JSON key
	OAuthToken         string // an OAuth 2 access token
}

// Config configures a Client.
type Config struct {
	// Endpoint is the API's base URL; empty means Google's. A fake is
	// "http://127.0.0.1:port/" (the trailing slash matters).
	Endpoint string
	// Credentials; none means unauthenticated (fakes only).
	Credentials Credentials
	Backoff     Backoff
	HTTPClient  *http.Client
}

// New builds a client. It fails when the credentials cannot be read.
func New(ctx context.Context, cfg Config) (*Client, error) {
	var opts []option.ClientOption
	if cfg.Endpoint != "" {
		ep := cfg.Endpoint
		if !strings.HasSuffix(ep, "/") {
			ep += "/"
		}
		opts = append(opts, option.WithEndpoint(ep))
	}
	switch {
	case len(cfg.Credentials.ServiceAccountJSON) > 0:
		opts = append(opts, option.WithAuthCredentialsJSON(option.ServiceAccount, cfg.Credentials.ServiceAccountJSON),
			option.WithScopes(sheetsapi.SpreadsheetsReadonlyScope))
	case cfg.Credentials.OAuthToken != "":
		opts = append(opts, option.WithHTTPClient(&http.Client{Transport: bearer{token: cfg.Credentials.OAuthToken, base: transportOf(cfg.HTTPClient)}}))
	case cfg.HTTPClient != nil:
		opts = append(opts, option.WithHTTPClient(cfg.HTTPClient))
	default:
		opts = append(opts, option.WithoutAuthentication())
	}
	// The authenticated HTTP client and endpoint, made as sheetsapi.NewService
	// makes them (same defaults), so BatchValues can use them too.
	opts = append([]option.ClientOption{internaloption.WithDefaultScopes(sheetsapi.SpreadsheetsReadonlyScope)}, opts...)
	opts = append(opts, internaloption.WithDefaultEndpointTemplate(defaultBaseTemplate),
		internaloption.WithDefaultMTLSEndpoint(defaultMTLSBase), internaloption.EnableNewAuthLibrary())
	hc, base, err := htransport.NewClient(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("sheets client: %w", err)
	}
	if base == "" {
		base = defaultBase
	}
	svc, err := sheetsapi.NewService(ctx, option.WithHTTPClient(hc), option.WithEndpoint(base))
	if err != nil {
		return nil, fmt.Errorf("sheets client: %w", err)
	}
	b := cfg.Backoff
	if b.Attempts == 0 {
		b = DefaultBackoff
	}
	return &Client{svc: svc, backoff: b, http: hc, base: base}, nil
}

// The Sheets API's endpoints (sheetsapi's own defaults).
const (
	defaultBase         = "https://sheets.googleapis.com/"
	defaultBaseTemplate = "https://sheets.UNIVERSE_DOMAIN/"
	defaultMTLSBase     = "https://sheets.mtls.googleapis.com/"
)

func transportOf(c *http.Client) http.RoundTripper {
	if c != nil && c.Transport != nil {
		return c.Transport
	}
	return http.DefaultTransport
}

type bearer struct {
	token string
	base  http.RoundTripper
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.base.RoundTrip(r)
}

// ErrNotFound is returned for a spreadsheet or sheet that does not exist or
// is not shared with the credentials.
var ErrNotFound = errors.New("spreadsheet not found or not shared")

// retryable reports whether a failed read may be retried: over quota, or the
// server's own failure.
func retryable(err error) bool {
	var ge *googleapi.Error
	if errors.As(err, &ge) {
		return ge.Code == http.StatusTooManyRequests || ge.Code >= 500
	}
	return false
}

// do runs call with retries.
func (c *Client) do(ctx context.Context, call func() error) error {
	wait := c.backoff.First
	for attempt := 1; ; attempt++ {
		err := call()
		if err == nil {
			return nil
		}
		var ge *googleapi.Error
		if errors.As(err, &ge) && ge.Code == http.StatusNotFound {
			return fmt.Errorf("%w: %s", ErrNotFound, ge.Message)
		}
		if !retryable(err) || attempt >= c.backoff.Attempts {
			return err
		}
		d := wait + rand.N(wait/2+1)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(d):
		}
		wait = min(wait*2, c.backoff.Max)
	}
}

// Values reads one range (values.get).
func (c *Client) Values(ctx context.Context, spreadsheet, rg string) ([][]string, error) {
	var vr *sheetsapi.ValueRange
	err := c.do(ctx, func() error {
		var err error
		vr, err = c.svc.Spreadsheets.Values.Get(spreadsheet, rg).Context(ctx).Do()
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", rg, err)
	}
	return cellsOf(vr.Values), nil
}

// BatchValues reads ranges in one request (values.batchGet), in order.
//
// It sends the request sheetsapi's BatchGet call sends, with the same client,
// and reads the answer with decodeBatch: sheetsapi decodes every cell into
// an interface value before cellsOf makes it text, which was a third of a
// re-sync's CPU. Errors are the API's (googleapi.CheckResponse), so retries
// and ErrNotFound work alike.
func (c *Client) BatchValues(ctx context.Context, spreadsheet string, ranges []string) ([][][]string, error) {
	var out [][][]string
	err := c.do(ctx, func() error {
		var err error
		out, err = c.batchGet(ctx, spreadsheet, ranges)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read %d ranges: %w", len(ranges), err)
	}
	if len(out) != len(ranges) {
		return nil, fmt.Errorf("read %d ranges: got %d back", len(ranges), len(out))
	}
	return out, nil
}

func (c *Client) batchGet(ctx context.Context, spreadsheet string, ranges []string) ([][][]string, error) {
	q := url.Values{"ranges": ranges, "alt": {"json"}, "prettyPrint": {"false"}}
	u := googleapi.ResolveRelative(c.base, "v4/spreadsheets/"+url.PathEscape(spreadsheet)+"/values:batchGet") + "?" + q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	res, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer googleapi.CloseBody(res)
	if err := googleapi.CheckResponse(res); err != nil {
		return nil, err
	}
	body, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, err
	}
	return decodeBatch(body)
}

// cellsOf turns the API's formatted values (strings, or numbers and booleans
// when asked for unformatted ones) into text.
func cellsOf(values [][]any) [][]string {
	out := make([][]string, len(values))
	for i, row := range values {
		cells := make([]string, len(row))
		for j, v := range row {
			switch v := v.(type) {
			case string:
				cells[j] = v
			case float64:
				cells[j] = strconv.FormatFloat(v, 'f', -1, 64)
			case bool:
				cells[j] = strconv.FormatBool(v)
			case nil:
			default:
				cells[j] = fmt.Sprint(v)
			}
		}
		out[i] = cells
	}
	return out
}

// Range is a sheet and the columns to read: "Sheet1", "'My Sheet'!A:L".
type Range struct {
	Sheet      string // the sheet's name, unquoted
	FirstCol   string // "A" when the range names no columns
	LastCol    string // "" when the range names no columns
	HeaderRow  int    // 1-based
	ChunkRows  int    // rows per range of a batchGet
	ChunkCount int    // ranges per batchGet
}

// ParseRange reads a connection's range: a sheet name, quoted or not, with
// optional columns ("Sheet1", "'My Sheet'!A:Z", "Commandes!B:M"). Row
// numbers in it are ignored: the header row is configured apart.
func ParseRange(s string) (Range, error) {
	r := Range{FirstCol: "A", HeaderRow: 1}
	sheet, cols := strings.TrimSpace(s), ""
	if i := strings.LastIndex(sheet, "!"); i >= 0 {
		sheet, cols = sheet[:i], sheet[i+1:]
	}
	if len(sheet) >= 2 && sheet[0] == '\'' && sheet[len(sheet)-1] == '\'' {
		sheet = strings.ReplaceAll(sheet[1:len(sheet)-1], "''", "'")
	}
	if sheet == "" {
		return r, fmt.Errorf("range %q names no sheet", s)
	}
	r.Sheet = sheet
	if cols != "" {
		a, b, _ := strings.Cut(cols, ":")
		a, b = strings.TrimRight(a, "0123456789"), strings.TrimRight(b, "0123456789")
		if !isLetters(a) || (b != "" && !isLetters(b)) {
			return r, fmt.Errorf("range %q: columns must be letters, like A:L", s)
		}
		r.FirstCol, r.LastCol = strings.ToUpper(a), strings.ToUpper(b)
	}
	return r, nil
}

func isLetters(s string) bool {
	if s == "" || len(s) > 3 {
		return false
	}
	for _, c := range s {
		if (c < 'A' || c > 'Z') && (c < 'a' || c > 'z') {
			return false
		}
	}
	return true
}

func (r Range) quoted() string { return "'" + strings.ReplaceAll(r.Sheet, "'", "''") + "'" }

// rows is the A1 range of rows from..to.
func (r Range) rows(from, to int) string {
	if r.LastCol == "" {
		return fmt.Sprintf("%s!%s%d:%d", r.quoted(), r.FirstCol, from, to)
	}
	return fmt.Sprintf("%s!%s%d:%s%d", r.quoted(), r.FirstCol, from, r.LastCol, to)
}

// Source streams a sheet's rows after the header.
type Source struct {
	c      *Client
	ctx    context.Context
	id     string
	rg     Range
	header []string
	next   int             // the sheet row the next fetch starts at
	buf    []intake.Record // fetched rows not yet returned
	done   bool
	// Fetches counts batchGet requests made.
	Fetches int
}

// Open reads the header row and returns a source positioned after it, or
// after skip more rows (a resumed sync). It fails with ErrNotFound for a
// spreadsheet or sheet the credentials cannot see, and intake.ErrMissingHeader
// when the header row is empty.
func (c *Client) Open(ctx context.Context, spreadsheet string, rg Range, skip int) (*Source, error) {
	if rg.HeaderRow < 1 {
		rg.HeaderRow = 1
	}
	if rg.ChunkRows <= 0 {
		rg.ChunkRows = 2500
	}
	if rg.ChunkCount <= 0 {
		rg.ChunkCount = 4
	}
	h, err := c.Values(ctx, spreadsheet, rg.rows(rg.HeaderRow, rg.HeaderRow))
	if err != nil {
		return nil, err
	}
	if len(h) == 0 || len(h[0]) == 0 {
		return nil, intake.ErrMissingHeader
	}
	return &Source{c: c, ctx: ctx, id: spreadsheet, rg: rg, header: h[0], next: rg.HeaderRow + 1 + skip}, nil
}

// Header returns the header row.
func (s *Source) Header() []string { return s.header }

// Next returns the next non-blank row (blank rows are skipped, as a CSV
// reader skips blank lines), and io.EOF after the last. The sheet ends at
// the first batch of ranges that comes back empty: Sheets omits trailing
// empty rows, so that costs one small request per sync, and a gap of blank
// rows longer than a whole batch (ChunkRows × ChunkCount) ends the sheet.
func (s *Source) Next() (intake.Record, error) {
	for len(s.buf) == 0 {
		if s.done {
			return intake.Record{}, io.EOF
		}
		if err := s.fetch(); err != nil {
			return intake.Record{}, err
		}
	}
	rec := s.buf[0]
	s.buf = s.buf[1:]
	return rec, nil
}

var _ intake.Batched = (*Source)(nil)

// Buffered returns how many fetched rows Next returns before it fetches
// again (intake.Batched).
func (s *Source) Buffered() int {
	if s.done {
		return 1 << 30 // no more fetches: Next ends the sheet
	}
	return len(s.buf)
}

// Peek returns the fetched rows Next has not returned yet (intake.Batched).
func (s *Source) Peek() []intake.Record { return s.buf }

func (s *Source) fetch() error {
	ranges := make([]string, s.rg.ChunkCount)
	for i := range ranges {
		from := s.next + i*s.rg.ChunkRows
		ranges[i] = s.rg.rows(from, from+s.rg.ChunkRows-1)
	}
	s.Fetches++
	got, err := s.c.BatchValues(s.ctx, s.id, ranges)
	if err != nil {
		return err
	}
	s.buf = s.buf[:0]
	for i, rows := range got {
		for j, row := range rows {
			if len(row) > 0 {
				s.buf = append(s.buf, intake.Record{Num: s.next + i*s.rg.ChunkRows + j, Cells: row})
			}
		}
	}
	s.done = len(s.buf) == 0
	s.next += s.rg.ChunkCount * s.rg.ChunkRows
	return nil
}
