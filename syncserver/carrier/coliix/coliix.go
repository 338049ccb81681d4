// Package coliix is the client of the Coliix carrier API (and of its
// white-label copies): one form-encoded endpoint per hub, the operation in
// the "action" field, the account token in the "token" field, and errors
// reported with HTTP 200 and a JSON "status" code. Coliix has no city list
// (cities are sent by name, from a mapping table), no cancel and no way to
// find a parcel by order number: a creation whose outcome is unknown must be
// held for review, never resent.
package coliix

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"

	"github.com/leadify/leadify/shared/city"
	"github.com/leadify/leadify/syncserver/carrier"
)

// Name is the carrier's stable name.
const Name = "coliix"

// Config configures a Client.
type Config struct {
	// Endpoint is the hub's API URL, e.g.
	// https://my.coliix.com/casa/seller/api-parcels.
	Endpoint string
	Token    string
	// HTTP is the client used for calls; nil means http.DefaultClient.
	// Set its Timeout: calls without a context deadline wait for it.
	HTTP *http.Client
	// Cities overrides or extends the default city names (keyed by
	// canonical city id), for hubs that spell a city differently.
	Cities map[string]string
}

// Client is a Coliix account. It is safe for concurrent use.
type Client struct {
	cfg    Config
	cities carrier.CityMap
}

var _ carrier.Carrier = (*Client)(nil)

// New returns a client for cfg. It fails if the endpoint is not an absolute
// http(s) URL or the token is empty.
func New(cfg Config) (*Client, error) {
	u, err := url.Parse(cfg.Endpoint)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("coliix: endpoint %q is not an http(s) URL", cfg.Endpoint)
	}
	if strings.TrimSpace(cfg.Token) == "" {
		return nil, fmt.Errorf("coliix: empty token")
	}
	m := carrier.CityMap{}
	for _, c := range city.All() {
		m[c.ID] = carrier.City{ID: c.Name, Name: c.Name}
	}
	for id, name := range cfg.Cities {
		m[id] = carrier.City{ID: name, Name: name}
	}
	return &Client{cfg: cfg, cities: m}, nil
}

// Name returns "coliix".
func (c *Client) Name() string { return Name }

// envelope is every Coliix answer: "status" is a number (200, 204, 401…) on
// add and errors, a boolean on track; "msg" is a message or, on track, the
// history.
type envelope struct {
	Status   carrier.Flex    `json:"status"`
	Msg      json.RawMessage `json:"msg"`
	Tracking string          `json:"tracking"`
}

// ok reports whether status says success: 200 (number or string) or true.
func (e envelope) ok() bool { return e.Status == "200" || e.Status == "true" }

func (e envelope) message() string {
	var s string
	if json.Unmarshal(e.Msg, &s) == nil {
		return strings.TrimSpace(s)
	}
	return ""
}

// call posts form with action and the token and decodes the envelope. A
// non-success status is returned as an *carrier.Error: 401 and 204 (account
// disabled) wrap ErrAuth, others ErrRejected.
func (c *Client) call(ctx context.Context, op string, form url.Values) (envelope, error) {
	form.Set("token", c.cfg.Token)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.cfg.Endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return envelope{}, fmt.Errorf("coliix %s: %w", op, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := carrier.Do(c.cfg.HTTP, Name, op, req)
	if err != nil {
		return envelope{}, err
	}
	env, err := parseEnvelope(resp.Body)
	if err != nil {
		return envelope{}, &carrier.Error{Carrier: Name, Op: op, Kind: carrier.ErrUnavailable, Code: fmt.Sprintf("HTTP %d", resp.Status), Msg: "unreadable answer", Err: err}
	}
	if !env.ok() {
		kind := carrier.ErrRejected
		switch env.Status {
		case "401", "403", "204":
			kind = carrier.ErrAuth
		}
		return envelope{}, &carrier.Error{Carrier: Name, Op: op, Kind: kind, Code: env.Status.String(), Msg: env.message()}
	}
	return env, nil
}

func parseEnvelope(body []byte) (envelope, error) {
	var env envelope
	if err := json.Unmarshal(body, &env); err != nil {
		return envelope{}, err
	}
	if env.Status == "" {
		return envelope{}, fmt.Errorf("no status field")
	}
	return env, nil
}

// Create adds a parcel with action=add. The city is sent by name from the
// mapping table; an unmapped city fails with *carrier.UnmappedCityError
// before any call.
func (c *Client) Create(ctx context.Context, p carrier.Parcel) (carrier.Created, error) {
	cc, err := c.cities.For(Name, p.City)
	if err != nil {
		return carrier.Created{}, err
	}
	form := url.Values{
		"action":          {"add"},
		"name":            {p.Name},
		"phone":           {p.Phone},
		"ville":           {cc.Name},
		"adresse":         {p.Address},
		"marchandise":     {p.Goods},
		"marchandise_qty": {strconv.Itoa(max(p.Quantity, 1))},
		"price":           {formatMAD(int64(p.COD))},
		"note":            {p.Note},
	}
	env, err := c.call(ctx, "create", form)
	if err != nil {
		return carrier.Created{}, err
	}
	code := strings.TrimSpace(env.Tracking)
	if code == "" {
		return carrier.Created{}, &carrier.Error{Carrier: Name, Op: "create", Kind: carrier.ErrUnavailable, Msg: "success without a tracking code: " + env.message()}
	}
	return carrier.Created{Tracking: code}, nil
}

// formatMAD writes centimes as a decimal MAD amount ("149", "149.50").
func formatMAD(centimes int64) string {
	if centimes%100 == 0 {
		return strconv.FormatInt(centimes/100, 10)
	}
	return fmt.Sprintf("%d.%02d", centimes/100, centimes%100)
}

// Lookup is unsupported: Coliix cannot find a parcel by order number.
func (c *Client) Lookup(context.Context, string) (carrier.Created, error) {
	return carrier.Created{}, &carrier.Error{Carrier: Name, Op: "lookup", Kind: carrier.ErrUnsupported}
}

// Cancel is unsupported: cancelling at Coliix is a manual step.
func (c *Client) Cancel(context.Context, string) error {
	return &carrier.Error{Carrier: Name, Op: "cancel", Kind: carrier.ErrUnsupported, Msg: "cancel the parcel in the Coliix dashboard"}
}

// Cities returns the city names this client sends, one per canonical city.
func (c *Client) Cities(context.Context) ([]carrier.City, error) {
	out := make([]carrier.City, 0, len(c.cities))
	for _, cc := range c.cities {
		out = append(out, cc)
	}
	return out, nil
}

// CheckCredentials tracks a code that cannot exist: a valid token gets an
// empty history, a bad one status 401.
func (c *Client) CheckCredentials(ctx context.Context) error {
	_, err := c.Track(ctx, "LEADIFY-CREDENTIALS-CHECK")
	if err != nil && !errorsIsNotFound(err) {
		return err
	}
	return nil
}

// Track returns a parcel's history with action=track. An empty history
// (Coliix's answer for an unknown code) is ErrNotFound.
func (c *Client) Track(ctx context.Context, code string) (carrier.Tracking, error) {
	env, err := c.call(ctx, "track", url.Values{"action": {"track"}, "tracking": {code}})
	if err != nil {
		return carrier.Tracking{}, err
	}
	t, err := parseHistory(code, env)
	if err != nil {
		return carrier.Tracking{}, &carrier.Error{Carrier: Name, Op: "track", Kind: carrier.ErrUnavailable, Msg: "unreadable history", Err: err}
	}
	if len(t.Events) == 0 {
		return carrier.Tracking{}, &carrier.Error{Carrier: Name, Op: "track", Kind: carrier.ErrNotFound, Msg: code}
	}
	return t, nil
}

type historyEntry struct {
	Code   string `json:"code"`
	Status string `json:"status"`
	Time   string `json:"time"`
	Etat   string `json:"etat"`
}

// parseHistory reads the track answer's msg array, oldest first.
func parseHistory(code string, env envelope) (carrier.Tracking, error) {
	t := carrier.Tracking{Code: strings.TrimSpace(code)}
	if tr := strings.TrimSpace(env.Tracking); tr != "" {
		t.Code = tr
	}
	msg := strings.TrimSpace(string(env.Msg))
	if msg == "" || msg == "null" || msg == `""` || msg == "[]" {
		return t, nil
	}
	var entries []historyEntry
	if err := json.Unmarshal(env.Msg, &entries); err != nil {
		return carrier.Tracking{}, err
	}
	for _, e := range entries {
		ev := Statuses.Event(t.Code, e.Status)
		ev.At, _ = carrier.ParseLocalTime(e.Time)
		t.Events = append(t.Events, ev)
		t.Paid = carrier.Fold(e.Etat) == "paye"
	}
	return t, nil
}

// TrackMany tracks each code (Coliix has no mass tracking), four at a time.
// Unknown codes are left out; any other failure fails the call.
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
			case errorsIsNotFound(err):
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
