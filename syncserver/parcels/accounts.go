package parcels

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/google/uuid"

	"github.com/leadify/leadify/syncserver/carrier/ameex"
	"github.com/leadify/leadify/syncserver/carrier/coliix"
	"github.com/leadify/leadify/syncserver/carrier/sendit"
	"github.com/leadify/leadify/syncserver/postgres"
	"github.com/leadify/leadify/syncserver/secrets"
)

// NewAccount describes a carrier account to add to a store.
type NewAccount struct {
	ID          uuid.UUID // zero: a new UUIDv7
	Store       uuid.UUID
	Carrier     string
	Label       string
	Credentials Credentials
	Concurrency int // zero: 4
}

// InsertAccount adds a carrier account in tx with its credentials sealed
// (bound to the row) and a new webhook token, and returns the account id
// and the token — shown once, only its hash is kept. It fails for an
// unknown carrier or credentials the carrier's client refuses.
func InsertAccount(ctx context.Context, tx *postgres.Tx, kr *secrets.Keyring, a NewAccount) (uuid.UUID, string, error) {
	if _, err := Dial(a.Carrier, a.Credentials, 0); err != nil {
		return uuid.Nil, "", err
	}
	switch a.Carrier {
	case coliix.Name, ameex.Name, sendit.Name:
	default:
		return uuid.Nil, "", fmt.Errorf("unknown carrier %q", a.Carrier)
	}
	if a.ID == uuid.Nil {
		a.ID = uuid.Must(uuid.NewV7())
	}
	if a.Concurrency == 0 {
		a.Concurrency = 4
	}
	plain, err := json.Marshal(a.Credentials)
	if err != nil {
		return uuid.Nil, "", err
	}
	sealed, err := kr.Seal(plain, postgres.CarrierCredentialsAD(a.ID))
	if err != nil {
		return uuid.Nil, "", err
	}
	token, hash := NewWebhookToken()
	_, err = tx.Exec(ctx, `INSERT INTO carrier_accounts (id, store_id, carrier, label, credentials, webhook_token_hash, concurrency)
VALUES ($1, $2, $3, $4, $5, $6, $7)`, a.ID, a.Store, a.Carrier, a.Label, sealed, hash, a.Concurrency)
	if err != nil {
		return uuid.Nil, "", fmt.Errorf("insert carrier account: %w", postgres.Translate(err))
	}
	return a.ID, token, nil
}
