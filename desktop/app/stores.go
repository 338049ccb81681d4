package app

import (
	"encoding/base64"
	"errors"
	"regexp"
	"time"

	"github.com/leadify/leadify/desktop/localstore"
	"github.com/leadify/leadify/desktop/serverclient"
	leadifyv1 "github.com/leadify/leadify/proto/gen/leadify/v1"
)

// Colours used for a store whose branding has none (or an invalid one).
const (
	DefaultPrimaryColor = "#1e3a5f"
	DefaultAccentColor  = "#f59e0b"
)

// maxLogoBytes is the largest logo passed to the UI (the server's limit too).
const maxLogoBytes = 512 << 10

// Store is one store as the UI shows it.
type Store struct {
	ID       string `json:"id"`
	SellerID string `json:"sellerId"`
	Name     string `json:"name"`
	// PrimaryColor and AccentColor are always valid "#rrggbb" values.
	PrimaryColor string `json:"primaryColor"`
	AccentColor  string `json:"accentColor"`
	// LogoURL is a data: URL of a PNG, JPEG, WebP or GIF logo, or "" for none.
	LogoURL string `json:"logoUrl"`
}

// StoreList is the user's stores and where they came from.
type StoreList struct {
	Stores []Store `json:"stores"`
	// Offline is true when the server could not be reached and Stores is the
	// local copy from UpdatedAt.
	Offline bool `json:"offline"`
	// UpdatedAt is when the list was last fetched from the server (RFC 3339, "" if never).
	UpdatedAt string `json:"updatedAt"`
}

// Stores lists the user's stores.
type Stores struct{ core *core }

// List returns the user's stores from the server, and saves them for offline
// use; when the server cannot be reached it returns the saved copy marked
// Offline. Fails with ErrNotSignedIn, or with the server's refusal (an expired
// session signs the user out).
func (s *Stores) List() (StoreList, error) {
	si, err := s.core.session()
	if err != nil {
		return StoreList{}, err
	}
	remote, err := si.client.ListStores(si.ctx)
	switch {
	case err == nil:
		now := s.core.opts.Now()
		rows := make([]localstore.Store, len(remote))
		for i, st := range remote {
			rows[i] = storeRow(st, now)
		}
		if err := si.db.ReplaceStores(si.ctx, rows); err != nil {
			return StoreList{}, err
		}
		if _, err := s.core.reached(si); err != nil {
			return StoreList{}, err
		}
		return listOf(rows, false, now), nil
	case errors.Is(err, serverclient.ErrUnreachable):
		_ = s.core.serverFailed(si, err)
		rows, err := si.db.Stores(si.ctx)
		if err != nil {
			return StoreList{}, err
		}
		var updated time.Time
		if len(rows) > 0 {
			updated = rows[0].CachedAt
		}
		return listOf(rows, true, updated), nil
	default:
		return StoreList{}, s.core.serverFailed(si, err)
	}
}

func storeRow(st *leadifyv1.Store, now time.Time) localstore.Store {
	b := st.GetSettings().GetBranding()
	return localstore.Store{
		ID: st.GetId(), SellerID: st.GetSellerId(), Name: st.GetSettings().GetName(),
		PrimaryColor: b.GetPrimaryColor(), AccentColor: b.GetAccentColor(),
		Logo: b.GetLogo(), LogoMIMEType: b.GetLogoMimeType(), CachedAt: now,
	}
}

func listOf(rows []localstore.Store, offline bool, updated time.Time) StoreList {
	l := StoreList{Stores: make([]Store, len(rows)), Offline: offline, UpdatedAt: timestamp(updated)}
	for i, r := range rows {
		l.Stores[i] = Store{
			ID: r.ID, SellerID: r.SellerID, Name: r.Name,
			PrimaryColor: colorOr(r.PrimaryColor, DefaultPrimaryColor),
			AccentColor:  colorOr(r.AccentColor, DefaultAccentColor),
			LogoURL:      logoURL(r.Logo, r.LogoMIMEType),
		}
	}
	return l
}

var hexColor = regexp.MustCompile(`^#[0-9a-fA-F]{6}$`)

func colorOr(c, fallback string) string {
	if hexColor.MatchString(c) {
		return c
	}
	return fallback
}

func logoURL(logo []byte, mime string) string {
	switch mime {
	case "image/png", "image/jpeg", "image/webp", "image/gif":
	default:
		return ""
	}
	if len(logo) == 0 || len(logo) > maxLogoBytes {
		return ""
	}
	return "data:" + mime + ";base64," + base64.StdEncoding.EncodeToString(logo)
}

func timestamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}
