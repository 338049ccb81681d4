package shopsync

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/google/uuid"

	"github.com/leadify/leadify/syncserver/intake/shop"
	"github.com/leadify/leadify/syncserver/intake/shop/shopify"
	"github.com/leadify/leadify/syncserver/intake/shop/woocommerce"
	"github.com/leadify/leadify/syncserver/intake/shop/youcan"
	"github.com/leadify/leadify/syncserver/postgres"
)

// WebhookRoute is the route pattern of shop webhooks.
const WebhookRoute = "POST /webhooks/shops/{platform}/{connection}"

// hookTTL is how long a connection's webhook secret is cached; a signature
// that does not match a secret cached longer than hookRecheck reloads it
// once (the seller may just have changed it).
const (
	hookTTL     = 30 * time.Second
	hookRecheck = time.Second
)

type hookEntry struct {
	store    uuid.UUID
	platform string
	secret   []byte
	missing  bool
	loaded   time.Time
}

// hook returns the connection's webhook check data, from the cache unless
// it is older than maxAge.
func (s *Service) hook(ctx context.Context, id uuid.UUID, maxAge time.Duration) (*hookEntry, error) {
	if v, ok := s.hooks.Load(id); ok {
		e := v.(*hookEntry)
		if time.Since(e.loaded) < maxAge {
			return e, nil
		}
	}
	e := &hookEntry{loaded: time.Now()}
	err := postgres.InTx(ctx, s.Pool, postgres.Scope{AllStores: true}, func(tx *postgres.Tx) error {
		c, err := LoadConnection(ctx, tx, id)
		if errors.Is(err, postgres.ErrNotFound) {
			e.missing = true
			return nil
		}
		if err != nil {
			return err
		}
		cr, err := s.Open(c)
		if err != nil {
			return err
		}
		e.store, e.platform, e.secret = c.StoreID, c.Platform, []byte(cr.WebhookSecret)
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.hooks.Store(id, e)
	return e, nil
}

// verify checks a request against the connection's secret and returns the
// delivery to store; ping reports WooCommerce's creation ping (answered
// 200, stored nowhere).
func verify(e *hookEntry, r *http.Request, body []byte) (d Delivery, ping bool, err error) {
	d = Delivery{Store: e.store, Platform: e.platform, Body: body}
	switch e.platform {
	case shop.Shopify:
		v, err := shopify.Verify(e.secret, r.Header, body)
		if err != nil {
			return d, false, err
		}
		d.Topic, d.DeliveryID = v.Topic, v.EventID
	case shop.WooCommerce:
		v, err := woocommerce.Verify(e.secret, r.Header, body)
		if err != nil {
			return d, false, err
		}
		if v.Ping {
			return d, true, nil
		}
		d.Topic, d.DeliveryID = v.Topic, v.DeliveryID
	case shop.YouCan:
		if err := youcan.Verify(e.secret, r.Header, body); err != nil {
			return d, false, err
		}
		d.Topic = r.URL.Query().Get("event")
		if d.Topic == "" {
			d.Topic = "order.create"
		}
		// YouCan sends no delivery id: a byte-identical redelivery of the
		// same event is the same delivery.
		h := sha256.New()
		h.Write([]byte(d.Topic))
		h.Write([]byte{0})
		h.Write(body)
		d.DeliveryID = "sha256:" + hex.EncodeToString(h.Sum(nil))
	default:
		return d, false, shop.ErrSignature
	}
	if len(d.Topic) > 200 || len(d.DeliveryID) > 200 {
		return d, false, shop.ErrSignature
	}
	return d, false, nil
}

// ServeWebhook accepts a shop webhook. It answers 200 once the delivery is
// durably stored (or was before: a redelivery), or for WooCommerce's
// creation ping; 404 for an unknown connection or a platform that is not
// the connection's; 401 for a missing or wrong signature (or no delivery
// id); 413 for a body over shop.MaxBody; 503 when the inbox could not
// commit (the shop retries).
func (s *Service) ServeWebhook(w http.ResponseWriter, r *http.Request) {
	platform := r.PathValue("platform")
	id, err := uuid.Parse(r.PathValue("connection"))
	if err != nil || (platform != shop.Shopify && platform != shop.WooCommerce && platform != shop.YouCan) {
		http.NotFound(w, r)
		return
	}
	body, err := readBody(r)
	if err != nil {
		http.Error(w, "read body", http.StatusBadRequest)
		return
	}
	if len(body) > shop.MaxBody {
		http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	e, err := s.hook(ctx, id, hookTTL)
	if err != nil {
		s.Log.Error("shop webhook: load connection", "connection", id, "err", err)
		http.Error(w, "try again", http.StatusServiceUnavailable)
		return
	}
	if !e.missing && e.platform != platform {
		http.NotFound(w, r)
		return
	}
	d, ping, verr := verify(e, r, body)
	if (e.missing || verr != nil) && time.Since(e.loaded) > hookRecheck {
		// A secret (or connection) changed since it was cached: look again.
		if e, err = s.hook(ctx, id, 0); err != nil {
			http.Error(w, "try again", http.StatusServiceUnavailable)
			return
		}
		if !e.missing && e.platform == platform {
			d, ping, verr = verify(e, r, body)
		}
	}
	switch {
	case e.missing || e.platform != platform:
		http.NotFound(w, r)
		return
	case verr != nil:
		s.Log.Warn("shop webhook refused: bad signature", "platform", platform, "connection", id, "remote", r.RemoteAddr, "err", verr)
		http.Error(w, "signature does not match", http.StatusUnauthorized)
		return
	case ping:
		s.Log.Info("woocommerce webhook ping", "connection", id)
		_, _ = w.Write([]byte("ok\n"))
		return
	}
	d.Connection = id
	if _, err := s.Inbox.Submit(ctx, d); err != nil {
		s.Log.Error("shop webhook not stored", "platform", platform, "connection", id, "err", err)
		http.Error(w, "try again", http.StatusServiceUnavailable)
		return
	}
	_, _ = w.Write([]byte("ok\n"))
}

// readBody reads up to shop.MaxBody+1 bytes of r's body into one buffer
// sized from Content-Length when the sender gave it (io.ReadAll starts at
// 512 bytes and grows and copies three times for a 1.5 KB order).
func readBody(r *http.Request) ([]byte, error) {
	var body bytes.Buffer
	if r.ContentLength > 0 && r.ContentLength <= shop.MaxBody {
		// ReadFrom wants bytes.MinRead free before each read, the one
		// that meets the end included.
		body.Grow(int(r.ContentLength) + bytes.MinRead)
	}
	_, err := body.ReadFrom(io.LimitReader(r.Body, shop.MaxBody+1))
	return body.Bytes(), err
}
