// Package shopsync connects stores to their shops (Shopify, WooCommerce,
// YouCan): connections with sealed credentials, the webhook endpoint
// (signature verified, body bounded, deduplicated by the platform's delivery
// id, stored durably with group commit, then acknowledged), River jobs that
// turn stored webhooks and backfilled orders into leads through the intake
// pipeline (same customers, duplicates and row keys as sheets and files),
// product and stock reads, and the stock reservations domain events drive.
package shopsync

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/leadify/leadify/syncserver/events"
	"github.com/leadify/leadify/syncserver/intake"
	"github.com/leadify/leadify/syncserver/intake/shop"
	"github.com/leadify/leadify/syncserver/intake/shop/shopify"
	"github.com/leadify/leadify/syncserver/intake/shop/woocommerce"
	"github.com/leadify/leadify/syncserver/intake/shop/youcan"
	"github.com/leadify/leadify/syncserver/postgres"
	"github.com/leadify/leadify/syncserver/secrets"
)

// Service is the shops capability of one server instance.
type Service struct {
	Pool    *pgxpool.Pool
	Keyring *secrets.Keyring
	Events  *events.Bus
	Log     *slog.Logger
	// River returns the job client (it exists only after workers are
	// registered, hence a function).
	River func() *river.Client[pgx.Tx]
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// HTTP is the client shop APIs are called with; nil means one with a
	// 30 s timeout.
	HTTP *http.Client
	// PublicURL is the server's public base URL, which webhook
	// subscriptions the server makes itself point at (empty: none made).
	PublicURL string

	Inbox *Inbox

	hooks   sync.Map       // connection id → *hookEntry
	stripes [64]sync.Mutex // per-store serialisation of processing, by hash

	kickMu     sync.Mutex
	kicked     map[uuid.UUID][]uuid.UUID // stored webhooks not yet enqueued, by store
	kickWake   chan struct{}             // made with the loop, on the first kick
	kickDone   chan struct{}             // closed when the loop has ended
	kickClosed bool
}

// New returns a Service with its inbox.
func New(pool *pgxpool.Pool, kr *secrets.Keyring, bus *events.Bus, log *slog.Logger, rc func() *river.Client[pgx.Tx]) *Service {
	s := &Service{Pool: pool, Keyring: kr, Events: bus, Log: log, River: rc}
	// Processing is enqueued after the inbox's commit, coalesced across
	// batches (one River insert per store every few milliseconds instead of
	// one per batch, which halved the inbox's throughput). A webhook stored
	// but never enqueued (a crash in between) is found by Recover at start
	// and by the periodic recovery sweep.
	s.Inbox = NewInbox(pool, nil, DefaultInboxWindow)
	s.Inbox.OnCommit = s.kick
	return s
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Service) stripe(store uuid.UUID) func() {
	m := &s.stripes[int(store[15])%len(s.stripes)]
	m.Lock()
	return m.Unlock
}

func (s *Service) httpClient() *http.Client {
	if s.HTTP != nil {
		return s.HTTP
	}
	return &http.Client{Timeout: 30 * time.Second}
}

// Credentials are what a connection's sealed credentials hold.
type Credentials struct {
	AccessToken    string `json:"access_token,omitempty"`    // Shopify, YouCan
	ConsumerKey    string `json:"consumer_key,omitempty"`    // WooCommerce
	ConsumerSecret string `json:"consumer_secret,omitempty"` // WooCommerce
	WebhookSecret  string `json:"webhook_secret,omitempty"`  // all: signs webhooks
}

// CredentialsAD binds a connection's sealed credentials to its row.
func CredentialsAD(id uuid.UUID) []byte {
	return []byte("shop_connections.credentials:" + id.String())
}

// Connection is a shop connection row, credentials still sealed.
type Connection struct {
	ID                uuid.UUID
	StoreID           uuid.UUID
	Platform          string
	Name              string
	BaseURL           string
	CODOnly           bool
	BackfillDays      int
	Sealed            string
	CreatedAt         time.Time
	UpdatedAt         time.Time
	LastBackfillAt    *time.Time
	LastBackfillError string
	ProductsSyncedAt  *time.Time
}

const connectionColumns = `id, store_id, platform, name, base_url, cod_only, backfill_days, credentials, created_at, updated_at,
  last_backfill_at, last_backfill_error, products_synced_at`

func scanConnection(row pgx.Row) (Connection, error) {
	var c Connection
	err := row.Scan(&c.ID, &c.StoreID, &c.Platform, &c.Name, &c.BaseURL, &c.CODOnly, &c.BackfillDays, &c.Sealed, &c.CreatedAt,
		&c.UpdatedAt, &c.LastBackfillAt, &c.LastBackfillError, &c.ProductsSyncedAt)
	return c, err
}

// LoadConnection reads a connection visible in tx's scope; another store's
// (or a deleted one) is postgres.ErrNotFound.
func LoadConnection(ctx context.Context, tx *postgres.Tx, id uuid.UUID) (Connection, error) {
	c, err := scanConnection(tx.QueryRow(ctx, `SELECT `+connectionColumns+` FROM shop_connections WHERE id = $1 AND deleted_at IS NULL`, id))
	if err != nil {
		return Connection{}, fmt.Errorf("shop connection %v: %w", id, postgres.Translate(err))
	}
	return c, nil
}

// ListConnections lists a store's connections.
func ListConnections(ctx context.Context, tx *postgres.Tx, store uuid.UUID) ([]Connection, error) {
	rows, err := tx.Query(ctx, `SELECT `+connectionColumns+` FROM shop_connections WHERE store_id = $1 AND deleted_at IS NULL
ORDER BY created_at, id`, store)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Connection, error) { return scanConnection(r) })
}

// Errors of connection checks, for errors.Is.
var (
	ErrPlatform = errors.New("unknown shop platform")
	ErrConfig   = errors.New("incomplete shop connection")
)

// Validate checks a connection's platform, address and credentials: what
// its API client and webhook check need.
func Validate(platform, baseURL string, cr Credentials) error {
	if _, err := Dial(platform, baseURL, cr, nil); err != nil {
		return err
	}
	if cr.WebhookSecret == "" {
		return fmt.Errorf("%w: the webhook secret is required", ErrConfig)
	}
	return nil
}

// Dial returns the API client of a platform.
func Dial(platform, baseURL string, cr Credentials, hc *http.Client) (shop.Client, error) {
	var (
		c   shop.Client
		err error
	)
	switch platform {
	case shop.Shopify:
		c, err = shopify.New(shopify.Config{BaseURL: baseURL, AccessToken: cr.AccessToken, HTTP: hc})
	case shop.WooCommerce:
		c, err = woocommerce.New(woocommerce.Config{BaseURL: baseURL, ConsumerKey: cr.ConsumerKey, ConsumerSecret: cr.ConsumerSecret, HTTP: hc})
	case shop.YouCan:
		c, err = youcan.New(youcan.Config{BaseURL: baseURL, Token: cr.AccessToken, HTTP: hc})
	default:
		return nil, fmt.Errorf("%w %q", ErrPlatform, platform)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	return c, nil
}

// Open opens a connection's credentials.
func (s *Service) Open(c Connection) (Credentials, error) {
	plain, err := s.Keyring.Open(c.Sealed, CredentialsAD(c.ID))
	if err != nil {
		return Credentials{}, fmt.Errorf("open credentials of shop connection %v: %w", c.ID, err)
	}
	var cr Credentials
	if err := json.Unmarshal(plain, &cr); err != nil {
		return Credentials{}, fmt.Errorf("credentials of shop connection %v: %w", c.ID, err)
	}
	return cr, nil
}

// Client returns the API client of a connection.
func (s *Service) Client(c Connection) (shop.Client, error) {
	cr, err := s.Open(c)
	if err != nil {
		return nil, err
	}
	return Dial(c.Platform, c.BaseURL, cr, s.httpClient())
}

// NewConnection describes a connection to add.
type NewConnection struct {
	ID           uuid.UUID // zero: a new UUIDv7
	Store        uuid.UUID
	Platform     string
	Name         string
	BaseURL      string
	Credentials  Credentials
	CODOnly      bool
	BackfillDays int // 0: 30
}

// InsertConnection adds a connection in tx: its intake source (same id: the
// orders' row keys live there) and the connection with its credentials
// sealed to the row.
func InsertConnection(ctx context.Context, tx *postgres.Tx, kr *secrets.Keyring, n NewConnection) (Connection, error) {
	n.BaseURL = strings.TrimRight(strings.TrimSpace(n.BaseURL), "/")
	if err := Validate(n.Platform, n.BaseURL, n.Credentials); err != nil {
		return Connection{}, err
	}
	if n.ID == uuid.Nil {
		n.ID = uuid.Must(uuid.NewV7())
	}
	if n.BackfillDays == 0 {
		n.BackfillDays = 30
	}
	if n.Name == "" {
		n.Name = n.BaseURL
	}
	plain, err := json.Marshal(n.Credentials)
	if err != nil {
		return Connection{}, err
	}
	sealed, err := kr.Seal(plain, CredentialsAD(n.ID))
	if err != nil {
		return Connection{}, err
	}
	if err := intake.CreateSource(ctx, tx, intake.SourceRow{StoreID: n.Store, ID: n.ID, Kind: intake.SourceKind(n.Platform), Name: n.Name}); err != nil {
		return Connection{}, err
	}
	c, err := scanConnection(tx.QueryRow(ctx, `INSERT INTO shop_connections (store_id, id, platform, name, base_url, credentials, cod_only, backfill_days)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING `+connectionColumns, n.Store, n.ID, n.Platform, n.Name, n.BaseURL, sealed, n.CODOnly, n.BackfillDays))
	if err != nil {
		return Connection{}, fmt.Errorf("insert shop connection: %w", postgres.Translate(err))
	}
	return c, nil
}

// Update is a change to a connection; nil fields stay.
type Update struct {
	Name         *string
	BaseURL      *string
	Credentials  *Credentials
	CODOnly      *bool
	BackfillDays *int
}

// UpdateConnection applies u to the connection in tx and returns it. New
// credentials replace the old ones whole, except an empty webhook secret,
// which keeps the old one.
func (s *Service) UpdateConnection(ctx context.Context, tx *postgres.Tx, c Connection, u Update) (Connection, []string, error) {
	var changed []string
	cr, err := s.Open(c)
	if err != nil {
		return Connection{}, nil, err
	}
	base := c.BaseURL
	if u.BaseURL != nil {
		base = strings.TrimRight(strings.TrimSpace(*u.BaseURL), "/")
		changed = append(changed, "base_url")
	}
	if u.Credentials != nil {
		secret := cr.WebhookSecret
		cr = *u.Credentials
		if cr.WebhookSecret == "" {
			cr.WebhookSecret = secret
		}
		changed = append(changed, "credentials")
	}
	if err := Validate(c.Platform, base, cr); err != nil {
		return Connection{}, nil, err
	}
	plain, err := json.Marshal(cr)
	if err != nil {
		return Connection{}, nil, err
	}
	sealed, err := s.Keyring.Seal(plain, CredentialsAD(c.ID))
	if err != nil {
		return Connection{}, nil, err
	}
	name, cod, days := c.Name, c.CODOnly, c.BackfillDays
	if u.Name != nil {
		name = *u.Name
		changed = append(changed, "name")
	}
	if u.CODOnly != nil {
		cod = *u.CODOnly
		changed = append(changed, "cod_only")
	}
	if u.BackfillDays != nil {
		days = *u.BackfillDays
		changed = append(changed, "backfill_days")
	}
	out, err := scanConnection(tx.QueryRow(ctx, `UPDATE shop_connections SET name = $3, base_url = $4, credentials = $5, cod_only = $6,
  backfill_days = $7, updated_at = now() WHERE store_id = $1 AND id = $2 RETURNING `+connectionColumns,
		c.StoreID, c.ID, name, base, sealed, cod, days))
	if err != nil {
		return Connection{}, nil, fmt.Errorf("update shop connection: %w", postgres.Translate(err))
	}
	if u.Name != nil {
		if _, err := tx.Exec(ctx, `UPDATE intake_sources SET name = $3, updated_at = now() WHERE store_id = $1 AND id = $2`, c.StoreID, c.ID, name); err != nil {
			return Connection{}, nil, err
		}
	}
	s.hooks.Delete(c.ID)
	return out, changed, nil
}

// WebhookPath is the path (under the server's public address) a
// connection's webhooks are sent to. YouCan's deliveries name no topic: the
// event goes in the subscription's target URL (?event=order.create).
func WebhookPath(platform string, id uuid.UUID) string {
	return "/webhooks/shops/" + platform + "/" + id.String()
}

// YouCanTarget is the target URL of a YouCan subscription for event.
func YouCanTarget(publicURL string, id uuid.UUID, event string) string {
	return strings.TrimRight(publicURL, "/") + WebhookPath(shop.YouCan, id) + "?event=" + url.QueryEscape(event)
}

// YouCanEvents are the events a YouCan connection subscribes to.
var YouCanEvents = []string{"order.create"}

// SubscribeWebhooks makes the webhook subscriptions a platform lets the server make
// itself — YouCan's resthooks, POST /resthooks/subscribe — pointing at the
// server's public URL, and says what it did. Shopify apps and WooCommerce
// sites register the connection's webhook path themselves.
func (s *Service) SubscribeWebhooks(ctx context.Context, c Connection) (string, error) {
	if c.Platform != shop.YouCan || s.PublicURL == "" {
		return "", nil
	}
	cr, err := s.Open(c)
	if err != nil {
		return "", err
	}
	client, err := youcan.New(youcan.Config{BaseURL: c.BaseURL, Token: cr.AccessToken, HTTP: s.httpClient()})
	if err != nil {
		return "", err
	}
	for _, ev := range YouCanEvents {
		if err := client.Subscribe(ctx, ev, YouCanTarget(s.PublicURL, c.ID, ev)); err != nil {
			return "", fmt.Errorf("subscribe %s: %w", ev, err)
		}
	}
	return "subscribed to " + strings.Join(YouCanEvents, ", "), nil
}
