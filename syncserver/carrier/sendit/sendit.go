// Package sendit is the client of the Sendit carrier API: JSON REST under
// /api/v1, a bearer token obtained from POST /login with the account's
// public and secret keys (renewed once when a call says 401), districts as
// city ids, and deliveries created, looked up by reference and tracked by
// code.
package sendit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"

	"github.com/leadify/leadify/syncserver/carrier"
)

// Name is the carrier's stable name.
const Name = "sendit"

// DefaultBaseURL is the Sendit API (CARRIERS.md); an empty Config.BaseURL
// means it.
const DefaultBaseURL = "https://app.sendit.ma/api/v1"

// maxDistrictPages bounds the district listing.
const maxDistrictPages = 100

// Config configures a Client.
type Config struct {
	BaseURL   string // https://app.sendit.ma/api/v1
	PublicKey string
	SecretKey string
	HTTP      *http.Client // nil means http.DefaultClient
}

// Client is a Sendit account. It is safe for concurrent use.
type Client struct {
	cfg  Config
	base string

	mu     sync.Mutex
	token  string
	cities carrier.CityMap
}

var _ carrier.Carrier = (*Client)(nil)

// New returns a client for cfg. It fails for a base URL that is not an
// absolute http(s) URL or empty keys.
func New(cfg Config) (*Client, error) {
	if cfg.BaseURL == "" {
		cfg.BaseURL = DefaultBaseURL
	}
	u, err := url.Parse(cfg.BaseURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("sendit: base URL %q is not an http(s) URL", cfg.BaseURL)
	}
	if strings.TrimSpace(cfg.PublicKey) == "" || strings.TrimSpace(cfg.SecretKey) == "" {
		return nil, fmt.Errorf("sendit: empty public or secret key")
	}
	return &Client{cfg: cfg, base: strings.TrimRight(cfg.BaseURL, "/")}, nil
}

// Name returns "sendit".
func (c *Client) Name() string { return Name }

type envelope struct {
	Success *bool           `json:"success"`
	Message string          `json:"message"`
	Data    json.RawMessage `json:"data"`
}

// send makes one HTTP call and classifies the answer: 401/403 wrap ErrAuth,
// 404 ErrNotFound, 4xx and success:false ErrRejected, 5xx ErrUnavailable.
func (c *Client) send(ctx context.Context, op, method, path string, token string, body any) (json.RawMessage, error) {
	var rd *bytes.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("sendit %s: %w", op, err)
		}
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, fmt.Errorf("sendit %s: %w", op, err)
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := carrier.Do(c.cfg.HTTP, Name, op, req)
	if err != nil {
		return nil, err
	}
	return parseEnvelope(op, resp)
}

func parseEnvelope(op string, resp carrier.Response) (json.RawMessage, error) {
	var env envelope
	jsonErr := json.Unmarshal(resp.Body, &env)
	code := "HTTP " + strconv.Itoa(resp.Status)
	fail := func(kind error) error {
		return &carrier.Error{Carrier: Name, Op: op, Kind: kind, Code: code, Msg: strings.TrimSpace(env.Message)}
	}
	switch {
	case resp.Status == http.StatusUnauthorized || resp.Status == http.StatusForbidden:
		return nil, fail(carrier.ErrAuth)
	case resp.Status == http.StatusNotFound:
		return nil, fail(carrier.ErrNotFound)
	case resp.Status >= 500:
		return nil, fail(carrier.ErrUnavailable)
	case resp.Status >= 400:
		return nil, fail(carrier.ErrRejected)
	case jsonErr != nil:
		return nil, &carrier.Error{Carrier: Name, Op: op, Kind: carrier.ErrUnavailable, Code: code, Msg: "unreadable answer", Err: jsonErr}
	case env.Success != nil && !*env.Success:
		return nil, fail(carrier.ErrRejected)
	}
	return env.Data, nil
}

// login returns the cached token, logging in when there is none or when
// stale equals the cached one (a call was refused with it).
func (c *Client) login(ctx context.Context, stale string) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token != "" && c.token != stale {
		return c.token, nil
	}
	data, err := c.send(ctx, "login", http.MethodPost, "/login", "", map[string]string{"public_key": c.cfg.PublicKey, "secret_key": c.cfg.SecretKey})
	if errors.Is(err, carrier.ErrRejected) {
		var ce *carrier.Error
		errors.As(err, &ce)
		return "", &carrier.Error{Carrier: Name, Op: "login", Kind: carrier.ErrAuth, Code: ce.Code, Msg: ce.Msg}
	}
	if err != nil {
		return "", err
	}
	var v struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal(data, &v); err != nil || strings.TrimSpace(v.Token) == "" {
		return "", &carrier.Error{Carrier: Name, Op: "login", Kind: carrier.ErrUnavailable, Msg: "answer without a token", Err: err}
	}
	c.token = strings.TrimSpace(v.Token)
	return c.token, nil
}

// call makes an authenticated call, logging in again once if the token was
// refused.
func (c *Client) call(ctx context.Context, op, method, path string, body any) (json.RawMessage, error) {
	token, err := c.login(ctx, "")
	if err != nil {
		return nil, err
	}
	data, err := c.send(ctx, op, method, path, token, body)
	if !errors.Is(err, carrier.ErrAuth) {
		return data, err
	}
	if token, err = c.login(ctx, token); err != nil {
		return nil, err
	}
	return c.send(ctx, op, method, path, token, body)
}

// CheckCredentials logs in with the keys.
func (c *Client) CheckCredentials(ctx context.Context) error {
	c.mu.Lock()
	c.token = ""
	c.mu.Unlock()
	_, err := c.login(ctx, "")
	return err
}

type product struct {
	Name     string `json:"name"`
	Quantity int    `json:"quantity"`
}

// Create posts a delivery to the district of p.City, with p.OrderRef as its
// reference.
func (c *Client) Create(ctx context.Context, p carrier.Parcel) (carrier.Created, error) {
	cities, err := c.cityMap(ctx)
	if err != nil {
		return carrier.Created{}, err
	}
	cc, err := cities.For(Name, p.City)
	if err != nil {
		return carrier.Created{}, err
	}
	districtID, err := strconv.Atoi(cc.ID)
	if err != nil {
		return carrier.Created{}, fmt.Errorf("sendit create: district id %q is not a number", cc.ID)
	}
	body := map[string]any{
		"reference":   p.OrderRef,
		"district_id": districtID,
		"name":        p.Name,
		"phone":       p.Phone,
		"address":     p.Address,
		"amount":      float64(p.COD) / 100,
		"products":    []product{{Name: p.Goods, Quantity: max(p.Quantity, 1)}},
		"allow_open":  p.AllowOpen,
		"comment":     p.Note,
	}
	data, err := c.call(ctx, "create", http.MethodPost, "/deliveries", body)
	if err != nil {
		return carrier.Created{}, err
	}
	var v struct {
		Code string `json:"code"`
	}
	if err := json.Unmarshal(data, &v); err != nil || strings.TrimSpace(v.Code) == "" {
		return carrier.Created{}, &carrier.Error{Carrier: Name, Op: "create", Kind: carrier.ErrUnavailable, Msg: "answer without a delivery code", Err: err}
	}
	return carrier.Created{Tracking: strings.TrimSpace(v.Code)}, nil
}

// Lookup asks for the deliveries whose reference is orderRef (GET
// /deliveries?reference=, the reference Create sends). CARRIERS.md
// documents neither the reference field nor a list filter, so the answer
// is trusted only when it shows the filter worked: a delivery with this
// reference is found; an empty list means none exists (ErrNotFound); a
// list holding deliveries without a reference, or with other references,
// proves nothing — the filter was ignored and ours may be on another page
// — and gives ErrUnsupported, so the caller holds the parcel for review
// instead of creating it a second time.
func (c *Client) Lookup(ctx context.Context, orderRef string) (carrier.Created, error) {
	data, err := c.call(ctx, "lookup", http.MethodGet, "/deliveries?"+url.Values{"reference": {orderRef}}.Encode(), nil)
	if err != nil {
		return carrier.Created{}, err
	}
	rows, _, err := parsePage(data)
	if err != nil {
		return carrier.Created{}, &carrier.Error{Carrier: Name, Op: "lookup", Kind: carrier.ErrUnavailable, Msg: "unreadable list", Err: err}
	}
	filtered := true
	for _, raw := range rows {
		var d struct {
			Code      string  `json:"code"`
			Reference *string `json:"reference"`
		}
		if json.Unmarshal(raw, &d) != nil || d.Reference == nil || strings.TrimSpace(*d.Reference) != orderRef {
			filtered = false
			continue
		}
		if code := strings.TrimSpace(d.Code); code != "" {
			return carrier.Created{Tracking: code}, nil
		}
	}
	if !filtered {
		return carrier.Created{}, &carrier.Error{Carrier: Name, Op: "lookup", Kind: carrier.ErrUnsupported,
			Msg: "the delivery list ignored the reference filter; cannot tell whether " + orderRef + " exists"}
	}
	return carrier.Created{}, &carrier.Error{Carrier: Name, Op: "lookup", Kind: carrier.ErrNotFound, Msg: orderRef}
}

// parsePage reads a list answer: data is either the array itself or a
// Laravel page {"data":[…],"last_page":N}.
func parsePage(data json.RawMessage) (rows []json.RawMessage, lastPage int, err error) {
	s := bytes.TrimSpace(data)
	if len(s) > 0 && s[0] == '[' {
		err = json.Unmarshal(s, &rows)
		return rows, 0, err
	}
	var p struct {
		Data     []json.RawMessage `json:"data"`
		LastPage int               `json:"last_page"`
	}
	err = json.Unmarshal(s, &p)
	return p.Data, p.LastPage, err
}

// Cities lists Sendit's districts, page by page.
func (c *Client) Cities(ctx context.Context) ([]carrier.City, error) {
	var out []carrier.City
	for page := 1; page <= maxDistrictPages; page++ {
		data, err := c.call(ctx, "districts", http.MethodGet, "/districts?page="+strconv.Itoa(page), nil)
		if err != nil {
			return nil, err
		}
		rows, last, err := parsePage(data)
		if err != nil {
			return nil, &carrier.Error{Carrier: Name, Op: "districts", Kind: carrier.ErrUnavailable, Msg: "unreadable district list", Err: err}
		}
		for _, raw := range rows {
			var d struct {
				ID   carrier.Flex `json:"id"`
				Name string       `json:"name"`
			}
			if json.Unmarshal(raw, &d) == nil && d.ID != "" && strings.TrimSpace(d.Name) != "" {
				out = append(out, carrier.City{ID: d.ID.String(), Name: strings.TrimSpace(d.Name)})
			}
		}
		if len(rows) == 0 || last <= page {
			break
		}
	}
	return out, nil
}

func (c *Client) cityMap(ctx context.Context) (carrier.CityMap, error) {
	c.mu.Lock()
	m := c.cities
	c.mu.Unlock()
	if m != nil {
		return m, nil
	}
	list, err := c.Cities(ctx)
	if err != nil {
		return nil, err
	}
	m, _ = carrier.MapCities(list)
	c.mu.Lock()
	c.cities = m
	c.mu.Unlock()
	return m, nil
}

// Track returns a delivery's history (GET /deliveries/{code}).
func (c *Client) Track(ctx context.Context, code string) (carrier.Tracking, error) {
	data, err := c.call(ctx, "track", http.MethodGet, "/deliveries/"+url.PathEscape(code), nil)
	if err != nil {
		return carrier.Tracking{}, err
	}
	t, err := parseDelivery(code, data)
	if err != nil {
		return carrier.Tracking{}, &carrier.Error{Carrier: Name, Op: "track", Kind: carrier.ErrUnavailable, Msg: "unreadable delivery", Err: err}
	}
	if len(t.Events) == 0 {
		return carrier.Tracking{}, &carrier.Error{Carrier: Name, Op: "track", Kind: carrier.ErrNotFound, Msg: code}
	}
	return t, nil
}

// parseDelivery reads a delivery: its history (oldest first) when present,
// otherwise its current status alone.
func parseDelivery(code string, data json.RawMessage) (carrier.Tracking, error) {
	var d struct {
		Code         string `json:"code"`
		Status       string `json:"status"`
		LastActionAt string `json:"last_action_at"`
		History      []struct {
			Status    string `json:"status"`
			CreatedAt string `json:"created_at"`
			Comment   string `json:"comment"`
		} `json:"history"`
	}
	if err := json.Unmarshal(data, &d); err != nil {
		return carrier.Tracking{}, err
	}
	t := carrier.Tracking{Code: strings.TrimSpace(code)}
	if s := strings.TrimSpace(d.Code); s != "" {
		t.Code = s
	}
	for _, h := range d.History {
		if strings.TrimSpace(h.Status) == "" {
			continue
		}
		ev := Statuses.Event(t.Code, h.Status)
		ev.At, _ = carrier.ParseLocalTime(h.CreatedAt)
		ev.Note = strings.TrimSpace(h.Comment)
		t.Events = append(t.Events, ev)
	}
	if len(t.Events) == 0 && strings.TrimSpace(d.Status) != "" {
		ev := Statuses.Event(t.Code, d.Status)
		ev.At, _ = carrier.ParseLocalTime(d.LastActionAt)
		t.Events = append(t.Events, ev)
	}
	return t, nil
}

// TrackMany tracks each code, four at a time (Sendit has no mass
// tracking). Unknown codes are left out.
func (c *Client) TrackMany(ctx context.Context, codes []string) (map[string]carrier.Tracking, error) {
	out := make(map[string]carrier.Tracking, len(codes))
	var (
		mu       sync.Mutex
		firstErr error
		wg       sync.WaitGroup
		sem      = make(chan struct{}, 4)
	)
	for _, code := range codes {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			t, err := c.Track(ctx, code)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				out[code] = t
			case errors.Is(err, carrier.ErrNotFound):
			case firstErr == nil:
				firstErr = err
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	return out, nil
}

// Cancel is unsupported: Sendit documents no cancel endpoint.
func (c *Client) Cancel(context.Context, string) error {
	return &carrier.Error{Carrier: Name, Op: "cancel", Kind: carrier.ErrUnsupported, Msg: "cancel the delivery in the Sendit dashboard"}
}
