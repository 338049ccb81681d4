package sheetsync

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/leadify/leadify/syncserver/postgres"
)

// The sheet-change endpoint the Apps Script calls (see appsscript):
//
//	POST /hooks/sheets/{store}/{connection}
//	X-Leadify-Signature: v1=<hex HMAC-SHA256 of the body under the connection's secret>
//	{"connection": "<id>", "ts": <unix seconds>, "nonce": "<uuid>", "event": "edit"}
const (
	HookRoute       = "POST /hooks/sheets/{store}/{connection}"
	SignatureHeader = "X-Leadify-Signature"
	// MaxHookBody bounds a call's body.
	MaxHookBody = 4 << 10
	// HookWindow is how far a call's timestamp may be from the server's
	// clock; nonces are kept twice as long, so a replay is always caught.
	HookWindow = 5 * time.Minute
)

// HookURL is the endpoint a connection's script calls.
func HookURL(publicURL string, store, source uuid.UUID) string {
	return strings.TrimRight(publicURL, "/") + "/hooks/sheets/" + store.String() + "/" + source.String()
}

// HookSecretAD is the associated data sealing a connection's hook secret.
func HookSecretAD(store, source uuid.UUID) []byte {
	return []byte("intake_sources.hook_secret:" + store.String() + ":" + source.String())
}

// HookSecret returns the connection's hook secret, making (and sealing) one
// when it has none or when rotate is set, in tx (scoped to the store). It
// fails with pgx.ErrNoRows for a connection that does not exist.
func (s *Service) HookSecret(ctx context.Context, tx *postgres.Tx, store, source uuid.UUID, rotate bool) (string, error) {
	var sealed []byte
	err := tx.QueryRow(ctx, `SELECT hook_secret FROM intake_sources
WHERE store_id = $1 AND id = $2 AND kind = 'sheet' AND deleted_at IS NULL FOR UPDATE`, store, source).Scan(&sealed)
	if err != nil {
		return "", err
	}
	if len(sealed) > 0 && !rotate {
		plain, err := s.Keyring.Open(string(sealed), HookSecretAD(store, source))
		if err != nil {
			return "", fmt.Errorf("open hook secret: %w", err)
		}
		return string(plain), nil
	}
	raw := make([]byte, 32)
	_, _ = rand.Read(raw)
	secret := base64.RawURLEncoding.EncodeToString(raw)
	seal, err := s.Keyring.Seal([]byte(secret), HookSecretAD(store, source))
	if err != nil {
		return "", err
	}
	if _, err := tx.Exec(ctx, `UPDATE intake_sources SET hook_secret = $3, updated_at = now() WHERE store_id = $1 AND id = $2`,
		store, source, []byte(seal)); err != nil {
		return "", err
	}
	return secret, nil
}

// Sign returns the signature header value of body under secret.
func Sign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "v1=" + hex.EncodeToString(m.Sum(nil))
}

// HookBody is what the script sends.
type HookBody struct {
	Connection string `json:"connection"`
	TS         int64  `json:"ts"`
	Nonce      string `json:"nonce"`
	Event      string `json:"event"`
}

// ParseHookBody reads a call's body: JSON with the connection id, a positive
// timestamp, a nonce of 8 to 100 characters and an event name of at most 40.
func ParseHookBody(b []byte) (HookBody, error) {
	var h HookBody
	if err := json.Unmarshal(b, &h); err != nil {
		return h, fmt.Errorf("body is not the script's JSON: %w", err)
	}
	switch {
	case h.Connection == "":
		return h, errors.New("body names no connection")
	case h.TS <= 0:
		return h, errors.New("body has no timestamp")
	case len(h.Nonce) < 8 || len(h.Nonce) > 100:
		return h, errors.New("body's nonce must be 8 to 100 characters")
	case len(h.Event) > 40:
		return h, errors.New("body's event name is too long")
	}
	return h, nil
}

// Hook answers the script's calls: it checks the signature under the
// connection's secret, the timestamp against HookWindow and the nonce
// against those already seen, then queues a sync of the connection at once
// (one queued per connection; if one is running, one more after it).
type Hook struct {
	S *Service
}

type hookError struct {
	status int
	code   string
	msg    string
}

func (e *hookError) Error() string { return e.msg }

func hookErr(status int, code, format string, args ...any) error {
	return &hookError{status: status, code: code, msg: fmt.Sprintf(format, args...)}
}

func (h *Hook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	err := h.serve(r)
	w.Header().Set("Content-Type", "application/json")
	if err == nil {
		w.WriteHeader(http.StatusAccepted)
		_, _ = w.Write([]byte(`{"queued":true}` + "\n"))
		return
	}
	he := (*hookError)(nil)
	if !errors.As(err, &he) {
		if h.S.Log != nil {
			h.S.Log.Error("sheet hook", "err", err)
		}
		he = &hookError{status: http.StatusInternalServerError, code: "internal", msg: "internal error; the periodic sync still runs"}
	}
	w.WriteHeader(he.status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": he.code, "message": he.msg}})
}

func (h *Hook) now() time.Time {
	if h.S.Now != nil {
		return h.S.Now()
	}
	return time.Now()
}

func (h *Hook) serve(r *http.Request) error {
	ctx := r.Context()
	store, err1 := uuid.Parse(r.PathValue("store"))
	source, err2 := uuid.Parse(r.PathValue("connection"))
	if err1 != nil || err2 != nil {
		return hookErr(http.StatusNotFound, "unknown_connection", "no such sheet connection")
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxHookBody+1))
	if err != nil {
		return hookErr(http.StatusBadRequest, "bad_body", "could not read the body")
	}
	if len(body) > MaxHookBody {
		return hookErr(http.StatusRequestEntityTooLarge, "too_large", "body over %d bytes", MaxHookBody)
	}
	// The secret, looked up in the store the URL names only.
	var sealed []byte
	err = postgres.InTx(ctx, h.S.Pool, postgres.StoreScope(store), func(tx *postgres.Tx) error {
		return tx.QueryRow(ctx, `SELECT hook_secret FROM intake_sources
WHERE store_id = $1 AND id = $2 AND kind = 'sheet' AND deleted_at IS NULL`, store, source).Scan(&sealed)
	})
	if errors.Is(err, pgx.ErrNoRows) || err == nil && len(sealed) == 0 {
		return hookErr(http.StatusNotFound, "unknown_connection", "no such sheet connection, or it has no script")
	}
	if err != nil {
		return err
	}
	secret, err := h.S.Keyring.Open(string(sealed), HookSecretAD(store, source))
	if err != nil {
		return fmt.Errorf("open hook secret: %w", err)
	}
	if !hmac.Equal([]byte(r.Header.Get(SignatureHeader)), []byte(Sign(string(secret), body))) {
		return hookErr(http.StatusUnauthorized, "bad_signature", "the signature does not match the connection's secret")
	}
	hb, err := ParseHookBody(body)
	if err != nil {
		return hookErr(http.StatusBadRequest, "bad_body", "%v", err)
	}
	if hb.Connection != source.String() {
		return hookErr(http.StatusBadRequest, "wrong_connection", "the body names another connection than the URL")
	}
	now := h.now()
	if d := now.Sub(time.Unix(hb.TS, 0)); d > HookWindow || d < -HookWindow {
		return hookErr(http.StatusUnauthorized, "stale", "the call's timestamp is %s from the server's clock (at most %s)", d.Round(time.Second), HookWindow)
	}
	return postgres.InTx(ctx, h.S.Pool, postgres.StoreScope(store), func(tx *postgres.Tx) error {
		tag, err := tx.Exec(ctx, `INSERT INTO intake_hook_nonces (store_id, source_id, nonce, seen_at) VALUES ($1, $2, $3, $4)
ON CONFLICT DO NOTHING`, store, source, hb.Nonce, now)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return hookErr(http.StatusConflict, "replayed", "this call was already received")
		}
		if _, err := tx.Exec(ctx, `DELETE FROM intake_hook_nonces WHERE store_id = $1 AND source_id = $2 AND seen_at < $3`,
			store, source, now.Add(-2*HookWindow)); err != nil {
			return err
		}
		return h.S.QueueChanged(ctx, tx.Tx, store, source)
	})
}

// hookStates are the states in which a sheet-change sync counts as queued.
var hookStates = []rivertype.JobState{rivertype.JobStateAvailable, rivertype.JobStatePending, rivertype.JobStateRetryable,
	rivertype.JobStateRunning, rivertype.JobStateScheduled}

// QueueChanged queues a sync because the sheet changed, in tx: one per
// connection while it waits; if that one is already running (it may have read
// past the change), one more after it.
func (s *Service) QueueChanged(ctx context.Context, tx pgx.Tx, store, source uuid.UUID) error {
	opts := &river.InsertOpts{MaxAttempts: 20, UniqueOpts: river.UniqueOpts{ByArgs: true, ByState: hookStates}}
	res, err := s.River().InsertTx(ctx, tx, SyncArgs{Store: store, Source: source, Changed: true}, opts)
	if err != nil {
		return fmt.Errorf("queue sheet sync: %w", err)
	}
	if res.UniqueSkippedAsDuplicate && res.Job != nil && res.Job.State == rivertype.JobStateRunning {
		_, err = s.River().InsertTx(ctx, tx, SyncArgs{Store: store, Source: source, Changed: true, After: res.Job.ID}, opts)
		if err != nil {
			return fmt.Errorf("queue sheet sync: %w", err)
		}
	}
	return nil
}
