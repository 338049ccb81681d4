// Package ameex is the client of the Ameex carrier API: headers C-Api-Id and
// C-Api-Key, form bodies, and HTTP 200 for everything with two failure
// layers — {"login":"error"} for bad credentials or an unknown path, and
// {"login":"success","api":{"type":"error",…}} for a refused operation.
// Cities are Ameex numeric ids from the Cities endpoint; a created parcel's
// code is sometimes missing from the answer and is then found through the
// parcel list by order number, which is also how an unknown creation outcome
// is reconciled.
package ameex

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/leadify/leadify/syncserver/carrier"
)

// Name is the carrier's stable name.
const Name = "ameex"

// DefaultBaseURL is the Ameex API (CARRIERS.md); an empty Config.BaseURL
// means it.
const DefaultBaseURL = "https://api.ameex.app"

// MassTrackingLimit is the most codes one MassTracking call takes.
const MassTrackingLimit = 25

// Config configures a Client.
type Config struct {
	BaseURL string // https://api.ameex.app
	APIID   string
	APIKey  string
	// Business is the sender ("expéditeur") id parcels are created for;
	// Ameex refuses an Add without one when the account has several.
	Business string
	HTTP     *http.Client // nil means http.DefaultClient
}

// Client is an Ameex account. It is safe for concurrent use; the city list
// is fetched once and cached.
type Client struct {
	cfg  Config
	base string

	mu     sync.Mutex
	cities carrier.CityMap
}

var _ carrier.Carrier = (*Client)(nil)

// New returns a client for cfg. It fails for a base URL that is not an
// absolute http(s) URL or empty credentials.
func New(cfg Config) (*Client, error) {
	if cfg.BaseURL == "" {
		cfg.BaseURL = DefaultBaseURL
	}
	u, err := url.Parse(cfg.BaseURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("ameex: base URL %q is not an http(s) URL", cfg.BaseURL)
	}
	if strings.TrimSpace(cfg.APIID) == "" || strings.TrimSpace(cfg.APIKey) == "" {
		return nil, fmt.Errorf("ameex: empty API id or key")
	}
	return &Client{cfg: cfg, base: strings.TrimRight(cfg.BaseURL, "/")}, nil
}

// Name returns "ameex".
func (c *Client) Name() string { return Name }

// envelope is every Ameex answer.
type envelope struct {
	Login string          `json:"login"`
	API   json.RawMessage `json:"api"`
}

type apiStatus struct {
	Type string `json:"type"`
	Msg  string `json:"msg"`
}

// call sends one request and returns the "api" object of a successful
// answer. Login errors wrap ErrAuth; api type "error" wraps ErrRejected.
func (c *Client) call(ctx context.Context, op, method, path string, query, form url.Values) (json.RawMessage, error) {
	u := c.base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	var body *strings.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	} else {
		body = strings.NewReader("")
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, fmt.Errorf("ameex %s: %w", op, err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.Header.Set("C-Api-Id", c.cfg.APIID)
	req.Header.Set("C-Api-Key", c.cfg.APIKey)
	req.Header.Set("Accept", "application/json")
	resp, err := carrier.Do(c.cfg.HTTP, Name, op, req)
	if err != nil {
		return nil, err
	}
	return parseEnvelope(op, resp)
}

func parseEnvelope(op string, resp carrier.Response) (json.RawMessage, error) {
	var env envelope
	if err := json.Unmarshal(resp.Body, &env); err != nil {
		return nil, &carrier.Error{Carrier: Name, Op: op, Kind: carrier.ErrUnavailable, Code: fmt.Sprintf("HTTP %d", resp.Status), Msg: "unreadable answer", Err: err}
	}
	switch strings.ToLower(strings.TrimSpace(env.Login)) {
	case "success":
	case "error":
		return nil, &carrier.Error{Carrier: Name, Op: op, Kind: carrier.ErrAuth, Code: "login error"}
	default:
		return nil, &carrier.Error{Carrier: Name, Op: op, Kind: carrier.ErrUnavailable, Code: fmt.Sprintf("HTTP %d", resp.Status), Msg: "answer without a login field"}
	}
	var st apiStatus
	if err := json.Unmarshal(env.API, &st); err != nil {
		return nil, &carrier.Error{Carrier: Name, Op: op, Kind: carrier.ErrUnavailable, Msg: "unreadable api object", Err: err}
	}
	if strings.EqualFold(strings.TrimSpace(st.Type), "error") {
		return nil, &carrier.Error{Carrier: Name, Op: op, Kind: carrier.ErrRejected, Code: "api error", Msg: strings.TrimSpace(st.Msg)}
	}
	return env.API, nil
}

// Create adds a parcel (type SIMPLE) with the Ameex city id of p.City and
// p.OrderRef as order_num. When the answer lacks the parcel code, the code
// is looked up by order number; if that fails too the error wraps
// ErrUnavailable (outcome unknown: reconcile with Lookup later).
func (c *Client) Create(ctx context.Context, p carrier.Parcel) (carrier.Created, error) {
	if p.COD <= 0 {
		return carrier.Created{}, &carrier.Error{Carrier: Name, Op: "create", Kind: carrier.ErrRejected, Msg: "cod must be > 0"}
	}
	cities, err := c.cityMap(ctx)
	if err != nil {
		return carrier.Created{}, err
	}
	cc, err := cities.For(Name, p.City)
	if err != nil {
		return carrier.Created{}, err
	}
	open := "NO"
	if p.AllowOpen {
		open = "YES"
	}
	form := url.Values{
		"type":      {"SIMPLE"},
		"business":  {c.cfg.Business},
		"order_num": {p.OrderRef},
		"replace":   {"0"},
		"open":      {open},
		"try":       {"NO"},
		"fragile":   {"0"},
		"receiver":  {p.Name},
		"phone":     {p.Phone},
		"city":      {cc.ID},
		"address":   {p.Address},
		"comment":   {p.Note},
		"product":   {productText(p)},
		"cod":       {formatMAD(int64(p.COD))},
	}
	api, err := c.call(ctx, "create", http.MethodPost, "/customer/Delivery/Parcels/Action/Type/Add", nil, form)
	if err != nil {
		return carrier.Created{}, err
	}
	if code := parseCreated(api); code != "" {
		return carrier.Created{Tracking: code}, nil
	}
	created, err := c.Lookup(ctx, p.OrderRef)
	if err != nil {
		return carrier.Created{}, &carrier.Error{Carrier: Name, Op: "create", Kind: carrier.ErrUnavailable, Msg: "created without a parcel code, and the lookup by order number failed", Err: err}
	}
	return created, nil
}

func productText(p carrier.Parcel) string {
	if p.Quantity > 1 {
		return fmt.Sprintf("%s x%d", p.Goods, p.Quantity)
	}
	return p.Goods
}

func formatMAD(centimes int64) string {
	if centimes%100 == 0 {
		return strconv.FormatInt(centimes/100, 10)
	}
	return fmt.Sprintf("%d.%02d", centimes/100, centimes%100)
}

// parseCreated returns api.parcel.code, or "" when absent.
func parseCreated(api json.RawMessage) string {
	var v struct {
		Parcel struct {
			Code string `json:"code"`
		} `json:"parcel"`
	}
	if json.Unmarshal(api, &v) != nil {
		return ""
	}
	return strings.TrimSpace(v.Parcel.Code)
}

// Lookup searches the parcel list (the DataTables Json endpoint) for
// orderRef. It returns ErrNotFound when no parcel matches and ErrRejected
// when several do and none is an exact match.
func (c *Client) Lookup(ctx context.Context, orderRef string) (carrier.Created, error) {
	form := url.Values{"start": {"0"}, "length": {"10"}, "search[value]": {orderRef}}
	api, err := c.call(ctx, "lookup", http.MethodPost, "/customer/Delivery/Parcels/Json", nil, form)
	if err != nil {
		return carrier.Created{}, err
	}
	code, err := parseList(api, orderRef)
	if err != nil {
		return carrier.Created{}, &carrier.Error{Carrier: Name, Op: "lookup", Kind: kindOf(err), Msg: orderRef, Err: err}
	}
	return carrier.Created{Tracking: code}, nil
}

var (
	errNoMatch   = errors.New("no parcel with this order number")
	errAmbiguous = errors.New("several parcels match the order number")
)

func kindOf(err error) error {
	switch {
	case errors.Is(err, errNoMatch):
		return carrier.ErrNotFound
	case errors.Is(err, errAmbiguous):
		return carrier.ErrRejected
	}
	return carrier.ErrUnavailable
}

// parseList reads aaData[].TBL_CODE. The list search is a substring search
// over several columns, so a row is preferred when one of its fields equals
// orderRef exactly; a single row is taken as the match.
func parseList(api json.RawMessage, orderRef string) (string, error) {
	var v struct {
		Rows []map[string]any `json:"aaData"`
	}
	if err := json.Unmarshal(api, &v); err != nil {
		return "", err
	}
	var exact []string
	for _, row := range v.Rows {
		for k, f := range row {
			if s, ok := f.(string); ok && k != "TBL_CODE" && strings.TrimSpace(s) == orderRef {
				if code, _ := row["TBL_CODE"].(string); strings.TrimSpace(code) != "" {
					exact = append(exact, strings.TrimSpace(code))
				}
				break
			}
		}
	}
	switch {
	case len(exact) == 1:
		return exact[0], nil
	case len(exact) > 1:
		return "", errAmbiguous
	case len(v.Rows) == 1:
		if code, _ := v.Rows[0]["TBL_CODE"].(string); strings.TrimSpace(code) != "" {
			return strings.TrimSpace(code), nil
		}
		return "", fmt.Errorf("list row without TBL_CODE")
	case len(v.Rows) == 0:
		return "", errNoMatch
	}
	return "", errAmbiguous
}

// Cities lists Ameex's cities with their numeric ids.
func (c *Client) Cities(ctx context.Context) ([]carrier.City, error) {
	api, err := c.call(ctx, "cities", http.MethodGet, "/customer/Delivery/Cities", nil, nil)
	if err != nil {
		return nil, err
	}
	cities, err := parseCities(api)
	if err != nil {
		return nil, &carrier.Error{Carrier: Name, Op: "cities", Kind: carrier.ErrUnavailable, Msg: "unreadable city list", Err: err}
	}
	return cities, nil
}

func parseCities(api json.RawMessage) ([]carrier.City, error) {
	var v struct {
		Cities []struct {
			ID   carrier.Flex `json:"id"`
			Name string       `json:"name"`
		} `json:"cities"`
	}
	if err := json.Unmarshal(api, &v); err != nil {
		return nil, err
	}
	out := make([]carrier.City, 0, len(v.Cities))
	for _, c := range v.Cities {
		if c.ID == "" || strings.TrimSpace(c.Name) == "" {
			continue
		}
		out = append(out, carrier.City{ID: c.ID.String(), Name: strings.TrimSpace(c.Name)})
	}
	return out, nil
}

// cityMap fetches and caches the canonical id → Ameex city map.
func (c *Client) cityMap(ctx context.Context) (carrier.CityMap, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cities != nil {
		return c.cities, nil
	}
	list, err := c.Cities(ctx)
	if err != nil {
		return nil, err
	}
	c.cities, _ = carrier.MapCities(list)
	return c.cities, nil
}

// CheckCredentials calls the status list, the cheapest authenticated call.
func (c *Client) CheckCredentials(ctx context.Context) error {
	_, err := c.call(ctx, "check credentials", http.MethodGet, "/customer/Delivery/Parcels/Statuts", nil, nil)
	return err
}

// Track returns a parcel's history. An api error or an empty history is
// ErrNotFound.
func (c *Client) Track(ctx context.Context, code string) (carrier.Tracking, error) {
	api, err := c.call(ctx, "track", http.MethodGet, "/customer/Delivery/Parcels/Tracking", url.Values{"ParcelCode": {code}}, nil)
	if errors.Is(err, carrier.ErrRejected) {
		return carrier.Tracking{}, &carrier.Error{Carrier: Name, Op: "track", Kind: carrier.ErrNotFound, Msg: code, Err: err}
	}
	if err != nil {
		return carrier.Tracking{}, err
	}
	var v struct {
		Tracking json.RawMessage `json:"tracking"`
	}
	if err := json.Unmarshal(api, &v); err != nil {
		return carrier.Tracking{}, &carrier.Error{Carrier: Name, Op: "track", Kind: carrier.ErrUnavailable, Msg: "unreadable tracking", Err: err}
	}
	t, err := parseHistory(code, v.Tracking)
	if err != nil {
		return carrier.Tracking{}, &carrier.Error{Carrier: Name, Op: "track", Kind: carrier.ErrUnavailable, Msg: "unreadable tracking", Err: err}
	}
	if len(t.Events) == 0 {
		return carrier.Tracking{}, &carrier.Error{Carrier: Name, Op: "track", Kind: carrier.ErrNotFound, Msg: code}
	}
	return t, nil
}

type historyEntry struct {
	Statut     string       `json:"statut"`
	StatutName string       `json:"statut_name"`
	Time       carrier.Flex `json:"time"`
	TimeStr    string       `json:"time_str"`
	CityName   string       `json:"city_name"`
	HubName    string       `json:"hub_name"`
	Comment    string       `json:"comment"`
}

// parseHistory reads a tracking object keyed by numeric strings ("0", "1",
// …), in key order; an array is accepted too.
func parseHistory(code string, raw json.RawMessage) (carrier.Tracking, error) {
	t := carrier.Tracking{Code: strings.TrimSpace(code)}
	s := strings.TrimSpace(string(raw))
	if s == "" || s == "null" || s == "[]" || s == "{}" || s == `""` {
		return t, nil
	}
	var entries []historyEntry
	if s[0] == '[' {
		if err := json.Unmarshal(raw, &entries); err != nil {
			return carrier.Tracking{}, err
		}
	} else {
		var m map[string]historyEntry
		if err := json.Unmarshal(raw, &m); err != nil {
			return carrier.Tracking{}, err
		}
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Slice(keys, func(i, j int) bool {
			a, errA := strconv.Atoi(keys[i])
			b, errB := strconv.Atoi(keys[j])
			if errA != nil || errB != nil {
				return keys[i] < keys[j]
			}
			return a < b
		})
		for _, k := range keys {
			entries = append(entries, m[k])
		}
	}
	for _, e := range entries {
		raw := e.Statut
		if strings.TrimSpace(raw) == "" {
			raw = e.StatutName
		}
		ev := Statuses.Event(t.Code, raw)
		if ts, ok := carrier.ParseLocalTime(e.Time.String()); ok {
			ev.At = ts
		} else {
			ev.At, _ = carrier.ParseLocalTime(e.TimeStr)
		}
		ev.Place = strings.TrimSpace(e.CityName)
		if ev.Place == "" {
			ev.Place = strings.TrimSpace(e.HubName)
		}
		ev.Note = strings.TrimSpace(e.StatutName)
		t.Events = append(t.Events, ev)
	}
	return t, nil
}

// TrackMany tracks codes with MassTracking (POST, form field codes: a
// comma list of at most 25). CARRIERS.md documents the request, not the
// answer: it is read as api.tracking keyed by parcel code, each value a
// history like Track's; an answer in another shape — unreadable, or keyed
// by none of the codes asked — is not guessed at: that batch is tracked
// code by code with the documented Tracking endpoint instead. Codes Ameex
// does not know are absent from the result.
func (c *Client) TrackMany(ctx context.Context, codes []string) (map[string]carrier.Tracking, error) {
	out := make(map[string]carrier.Tracking, len(codes))
	for start := 0; start < len(codes); start += MassTrackingLimit {
		batch := codes[start:min(start+MassTrackingLimit, len(codes))]
		api, err := c.call(ctx, "mass track", http.MethodPost, "/customer/Delivery/Parcels/MassTracking", nil, url.Values{"codes": {strings.Join(batch, ",")}})
		if err != nil {
			return nil, err
		}
		got, ok := parseMassTracking(api, batch)
		if !ok {
			if got, err = c.trackEach(ctx, batch); err != nil {
				return nil, err
			}
		}
		for code, t := range got {
			out[code] = t
		}
	}
	return out, nil
}

// trackEach tracks codes one by one, leaving unknown ones out.
func (c *Client) trackEach(ctx context.Context, codes []string) (map[string]carrier.Tracking, error) {
	out := make(map[string]carrier.Tracking, len(codes))
	for _, code := range codes {
		t, err := c.Track(ctx, code)
		switch {
		case err == nil:
			out[code] = t
		case !errors.Is(err, carrier.ErrNotFound):
			return nil, err
		}
	}
	return out, nil
}

// parseMassTracking reads api.tracking as an object keyed by parcel code,
// each value a history like Track's (histories that are empty are left
// out). It reports false for an answer in any other shape: no tracking
// object, an unreadable history, or keys none of which is a code asked for
// (a single parcel's history keyed "0", "1", …, say).
func parseMassTracking(api json.RawMessage, asked []string) (map[string]carrier.Tracking, bool) {
	var v struct {
		Tracking map[string]json.RawMessage `json:"tracking"`
	}
	if err := json.Unmarshal(api, &v); err != nil || v.Tracking == nil {
		return nil, false
	}
	want := make(map[string]bool, len(asked))
	for _, code := range asked {
		want[strings.TrimSpace(code)] = true
	}
	out := make(map[string]carrier.Tracking, len(v.Tracking))
	matched := false
	for code, raw := range v.Tracking {
		if want[strings.TrimSpace(code)] {
			matched = true
		}
		t, err := parseHistory(code, raw)
		if err != nil {
			return nil, false
		}
		if len(t.Events) > 0 {
			out[t.Code] = t
		}
	}
	if len(v.Tracking) > 0 && !matched {
		return nil, false
	}
	return out, true
}

// Cancel deletes a parcel not yet picked up. Ameex refuses (ErrRejected)
// once the parcel has left the seller.
func (c *Client) Cancel(ctx context.Context, code string) error {
	_, err := c.call(ctx, "cancel", http.MethodGet, "/customer/Delivery/Parcels/Action/Type/Delete", url.Values{"ParcelCode": {code}}, nil)
	return err
}
