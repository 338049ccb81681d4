package shopsync

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/leadify/leadify/syncserver/postgres"
	"github.com/leadify/leadify/syncserver/secrets"
)

// RotateSecrets re-seals every shop connection's credentials that are not
// under the keyring's active key, 500 a transaction, and returns how many it
// rewrote. It can be interrupted and run again.
func RotateSecrets(ctx context.Context, pool *pgxpool.Pool, kr *secrets.Keyring) (int, error) {
	rewritten := 0
	after := uuid.Nil
	for {
		n := 0
		err := postgres.InTx(ctx, pool, postgres.Scope{AllStores: true}, func(tx *postgres.Tx) error {
			rows, err := tx.Query(ctx, `SELECT store_id, id, credentials FROM shop_connections WHERE id > $1 ORDER BY id LIMIT 500 FOR UPDATE`, after)
			if err != nil {
				return err
			}
			type row struct {
				store, id uuid.UUID
				sealed    string
			}
			list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (row, error) {
				var x row
				return x, r.Scan(&x.store, &x.id, &x.sealed)
			})
			if err != nil {
				return err
			}
			n = len(list)
			for _, x := range list {
				after = x.id
				if !kr.NeedsRotation(x.sealed) {
					continue
				}
				sealed, err := kr.Rotate(x.sealed, CredentialsAD(x.id))
				if err != nil {
					return fmt.Errorf("shop connection %v: %w", x.id, err)
				}
				if _, err := tx.Exec(ctx, `UPDATE shop_connections SET credentials = $3 WHERE store_id = $1 AND id = $2`, x.store, x.id, sealed); err != nil {
					return err
				}
				rewritten++
			}
			return nil
		})
		if err != nil || n == 0 {
			return rewritten, err
		}
	}
}
