package sheets_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/leadify/leadify/syncserver/intake"
	"github.com/leadify/leadify/syncserver/intake/sample"
	"github.com/leadify/leadify/syncserver/intake/sheets"
	"github.com/leadify/leadify/syncserver/intake/sheets/sheetstest"
)

var fast = sheets.Backoff{First: time.Millisecond, Max: 4 * time.Millisecond, Attempts: 6}

func fake(t *testing.T) (*sheetstest.Server, *sheets.Client) {
	t.Helper()
	s := sheetstest.New()
	t.Cleanup(s.Close)
	s.SetSheet("book", "Sheet1", [][]string{
		{"Phone", "City", "Note"},
		{"0612345678", "Rabat", ""},
		{"", "", ""},
		{"0612345679", "", "x"},
		{"", ""},
	})
	s.SetSheet("book", "My Sheet", [][]string{{"a", "b"}})
	s.SetSheet("book", "Empty", nil)
	c, err := sheets.New(context.Background(), sheets.Config{Endpoint: s.URL + "/", Backoff: fast})
	require.NoError(t, err)
	return s, c
}

func getJSON(t *testing.T, u string) (int, map[string]any) {
	t.Helper()
	resp, err := http.Get(u)
	require.NoError(t, err)
	defer resp.Body.Close()
	var body map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
	return resp.StatusCode, body
}

// CARRIERS.md: values.get returns a ValueRange {"range","majorDimension","values"};
// trailing empty rows and cells are omitted; no data → no "values" key.
func TestConformanceValueRangeShape(t *testing.T) {
	t.Parallel()
	s, _ := fake(t)
	code, body := getJSON(t, s.URL+"/v4/spreadsheets/book/values/"+url.PathEscape("Sheet1!A1:C10"))
	require.Equal(t, 200, code)
	require.Equal(t, "ROWS", body["majorDimension"])
	require.Contains(t, body["range"], "Sheet1!A1:")
	require.Equal(t, []any{
		[]any{"Phone", "City", "Note"},
		[]any{"0612345678", "Rabat"}, // trailing empty cell omitted
		[]any{},                      // an empty row inside the data stays
		[]any{"0612345679", "", "x"},
	}, body["values"]) // the trailing empty row is omitted
	_, body = getJSON(t, s.URL+"/v4/spreadsheets/book/values/Empty")
	require.NotContains(t, body, "values")
	_, body = getJSON(t, s.URL+"/v4/spreadsheets/book/values/"+url.PathEscape("Sheet1!A50:C60"))
	require.NotContains(t, body, "values")
}

// CARRIERS.md: batchGet returns {"spreadsheetId","valueRanges":[…]} in request order.
func TestConformanceBatchGetOrder(t *testing.T) {
	t.Parallel()
	s, c := fake(t)
	_, body := getJSON(t, s.URL+"/v4/spreadsheets/book/values:batchGet?ranges="+url.QueryEscape("'My Sheet'!A:Z")+"&ranges=Sheet1!A2:A2")
	require.Equal(t, "book", body["spreadsheetId"])
	vrs := body["valueRanges"].([]any)
	require.Len(t, vrs, 2)
	require.Equal(t, []any{[]any{"a", "b"}}, vrs[0].(map[string]any)["values"])
	require.Equal(t, []any{[]any{"0612345678"}}, vrs[1].(map[string]any)["values"])

	got, err := c.BatchValues(context.Background(), "book", []string{"Sheet1!B1:B2", "'My Sheet'!A:Z", "Empty"})
	require.NoError(t, err)
	require.Equal(t, [][][]string{{{"City"}, {"Rabat"}}, {{"a", "b"}}, {}}, got)
}

// CARRIERS.md: ranges are "Sheet1!A1:D", "'My Sheet'!A:Z" or a bare sheet
// name, escaped by the client inside the path.
func TestConformanceRanges(t *testing.T) {
	t.Parallel()
	_, c := fake(t)
	ctx := context.Background()
	for rg, want := range map[string][][]string{
		"Sheet1!A1:D":     {{"Phone", "City", "Note"}, {"0612345678", "Rabat"}, {}, {"0612345679", "", "x"}},
		"'My Sheet'!A:Z":  {{"a", "b"}},
		"Sheet1":          {{"Phone", "City", "Note"}, {"0612345678", "Rabat"}, {}, {"0612345679", "", "x"}},
		"Sheet1!B2:C4":    {{"Rabat"}, {}, {"", "x"}},
		"'My Sheet'!B1:B": {{"b"}},
	} {
		got, err := c.Values(ctx, "book", rg)
		require.NoError(t, err, rg)
		require.Equal(t, want, got, rg)
	}
}

// CARRIERS.md: errors are {"error":{"code":404,"message":…,"status":"NOT_FOUND"}}.
func TestConformanceErrorShape(t *testing.T) {
	t.Parallel()
	s, c := fake(t)
	code, body := getJSON(t, s.URL+"/v4/spreadsheets/nope/values/Sheet1")
	require.Equal(t, 404, code)
	e := body["error"].(map[string]any)
	require.EqualValues(t, 404, e["code"])
	require.Equal(t, "NOT_FOUND", e["status"])
	require.NotEmpty(t, e["message"])
	_, err := c.Values(context.Background(), "nope", "Sheet1")
	require.ErrorIs(t, err, sheets.ErrNotFound)
}

// CARRIERS.md: over the read quota the API answers 429 RESOURCE_EXHAUSTED, to
// be retried with exponential backoff.
func TestConformanceQuota429Retried(t *testing.T) {
	t.Parallel()
	s, c := fake(t)
	code, body := func() (int, map[string]any) {
		s.Fail429(1)
		return getJSON(t, s.URL+"/v4/spreadsheets/book/values/Sheet1")
	}()
	require.Equal(t, 429, code)
	require.Equal(t, "RESOURCE_EXHAUSTED", body["error"].(map[string]any)["status"])

	s.Fail429(3)
	got, err := c.Values(context.Background(), "book", "'My Sheet'!A:Z")
	require.NoError(t, err)
	require.Equal(t, [][]string{{"a", "b"}}, got)

	s.Fail429(100) // more than the attempts allow: the error surfaces
	_, err = c.Values(context.Background(), "book", "Sheet1")
	require.Error(t, err)
	require.Contains(t, err.Error(), "429")
	s.Fail429(0)

	// A quota per window: reads beyond it wait for the window to roll over.
	s.SetQuota(2, 20*time.Millisecond)
	for range 5 {
		_, err := c.Values(context.Background(), "book", "Sheet1")
		require.NoError(t, err)
	}
}

// Slow answers respect the caller's deadline.
func TestSlowAnswersHonourContext(t *testing.T) {
	t.Parallel()
	s, c := fake(t)
	s.SetDelay(time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err := c.Values(ctx, "book", "Sheet1")
	require.Error(t, err)
	require.True(t, errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded))
}

// The source reads the sample sheet in big batchGet chunks, skipping blank
// rows, with each row's sheet number.
func TestSourceStreamsInChunks(t *testing.T) {
	t.Parallel()
	s, c := fake(t)
	f := bytes.NewReader(sample.CSV)
	require.NoError(t, s.LoadCSV("sample", "Commandes", f))
	src, err := c.Open(context.Background(), "sample", sheets.Range{Sheet: "Commandes", FirstCol: "A", HeaderRow: 1, ChunkRows: 100, ChunkCount: 3}, 0)
	require.NoError(t, err)
	require.Equal(t, "N° Commande", src.Header()[0])
	var nums []int
	for {
		rec, err := src.Next()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		nums = append(nums, rec.Num)
	}
	require.Len(t, nums, 989)
	require.Equal(t, 2, nums[0])
	require.Equal(t, 1001, nums[len(nums)-1])
	require.Equal(t, 5, src.Fetches, "4 batches of 300 rows, then one empty batch ends the sheet")

	// Resuming after row 900 reads from row 901 on.
	src, err = c.Open(context.Background(), "sample", sheets.Range{Sheet: "Commandes", FirstCol: "A", ChunkRows: 100, ChunkCount: 3}, 899)
	require.NoError(t, err)
	rec, err := src.Next()
	require.NoError(t, err)
	require.GreaterOrEqual(t, rec.Num, 901)
}

func TestMissingHeader(t *testing.T) {
	t.Parallel()
	_, c := fake(t)
	_, err := c.Open(context.Background(), "book", sheets.Range{Sheet: "Empty"}, 0)
	require.ErrorIs(t, err, intake.ErrMissingHeader)
}

func TestParseRange(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]sheets.Range{
		"Sheet1":          {Sheet: "Sheet1", FirstCol: "A", HeaderRow: 1},
		"'My Sheet'!A:Z":  {Sheet: "My Sheet", FirstCol: "A", LastCol: "Z", HeaderRow: 1},
		"Commandes!b2:m":  {Sheet: "Commandes", FirstCol: "B", LastCol: "M", HeaderRow: 1},
		"'It''s'!A1:L500": {Sheet: "It's", FirstCol: "A", LastCol: "L", HeaderRow: 1},
	} {
		got, err := sheets.ParseRange(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
	for _, in := range []string{"", "!A:B", "Sheet1!1:2", "Sheet1!A$:B"} {
		_, err := sheets.ParseRange(in)
		require.Error(t, err, fmt.Sprint(in))
	}
}

// A service account's requests are signed, batchGet's (sent without the API's
// decoder) as the header's: the client gets a token from the key's token URI
// and sends it with every read.
func TestServiceAccountSignsEveryRead(t *testing.T) {
	t.Parallel()
	s, _ := fake(t)
	var tokens atomic.Int32
	tokenSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tokens.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"access_token":"tok-1","token_type":"Bearer","expires_in":3600}`)
	}))
	t.Cleanup(tokenSrv.Close)
	target, err := url.Parse(s.URL)
	require.NoError(t, err)
	proxy := httputil.NewSingleHostReverseProxy(target)
	var unsigned atomic.Int32
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tok-1" {
			unsigned.Add(1)
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(api.Close)

	key, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	sa, err := json.Marshal(map[string]string{"type": "service_account", "project_id": "p", "private_key_id": "k1",
		"private_key": string(pemKey), "client_email": "sync@p.iam.gserviceaccount.com", "client_id": "1",
		"token_uri": tokenSrv.URL})
	require.NoError(t, err)
	c, err := sheets.New(context.Background(), sheets.Config{Endpoint: api.URL + "/", Credentials: sheets.Credentials{ServiceAccountJSON: sa}, Backoff: fast})
	require.NoError(t, err)
	src, err := c.Open(context.Background(), "book", sheets.Range{Sheet: "Sheet1", FirstCol: "A", HeaderRow: 1}, 0)
	require.NoError(t, err)
	rec, err := src.Next()
	require.NoError(t, err)
	require.Equal(t, []string{"0612345678", "Rabat"}, rec.Cells)
	require.Zero(t, unsigned.Load(), "reads without the token")
	require.Positive(t, tokens.Load())
}
