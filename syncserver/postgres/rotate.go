package postgres

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/leadify/leadify/syncserver/postgres/queries"
	"github.com/leadify/leadify/syncserver/secrets"
)

// CarrierCredentialsAD is the associated data binding a carrier account's
// sealed credentials to its row.
func CarrierCredentialsAD(id uuid.UUID) []byte {
	return []byte("carrier_accounts.credentials:" + id.String())
}

// RotateSecrets re-seals every stored credential that is not under the
// keyring's active key, in batches, and returns how many it rewrote. It can be
// interrupted and run again.
func RotateSecrets(ctx context.Context, pool *pgxpool.Pool, kr *secrets.Keyring) (int, error) {
	rewritten := 0
	after := uuid.Nil
	for {
		var batch []queries.ListCarrierAccountSecretsRow
		err := InTx(ctx, pool, Scope{AllStores: true}, func(tx *Tx) error {
			var err error
			batch, err = tx.Q.ListCarrierAccountSecrets(ctx, tx, queries.ListCarrierAccountSecretsParams{After: after, Lim: 500})
			if err != nil {
				return err
			}
			for _, row := range batch {
				if !kr.NeedsRotation(row.Credentials) {
					continue
				}
				sealed, err := kr.Rotate(row.Credentials, CarrierCredentialsAD(row.ID))
				if err != nil {
					return fmt.Errorf("carrier account %v: %w", row.ID, err)
				}
				if err := tx.Q.SetCarrierAccountSecret(ctx, tx, queries.SetCarrierAccountSecretParams{ID: row.ID, Credentials: sealed}); err != nil {
					return err
				}
				rewritten++
			}
			return nil
		})
		if err != nil {
			return rewritten, err
		}
		if len(batch) == 0 {
			return rewritten, nil
		}
		after = batch[len(batch)-1].ID
	}
}
