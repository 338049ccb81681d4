package intake_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/leadify/leadify/syncserver/servertest"
)

// The foreign key from leads to stores is checked once per statement by
// triggers (migration 00012); these tests hold them to the foreign key's
// guarantee: no lead ever refers to a missing store.

func ownerConn(t *testing.T, env *servertest.Env) *pgx.Conn {
	t.Helper()
	ctx := context.Background()
	c, err := pgx.Connect(ctx, env.DB.OwnerURL)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

const insertLead = `INSERT INTO leads (store_id, id, version, created_at, updated_at, status)
SELECT s, gen_random_uuid(), 1, now(), now(), 'new' FROM unnest($1::uuid[]) s`

func requireFKViolation(t *testing.T, err error) {
	t.Helper()
	var pgErr *pgconn.PgError
	require.True(t, errors.As(err, &pgErr), "want a foreign key violation, got %v", err)
	require.Equal(t, "23503", pgErr.Code, pgErr.Message)
}

// writeLeads runs fn in a transaction of c marked as the versioned-write
// helper's (sync_guard lets only those write leads).
func writeLeads(t *testing.T, c *pgx.Conn, fn func(tx pgx.Tx) error) error {
	t.Helper()
	return pgx.BeginFunc(context.Background(), c, func(tx pgx.Tx) error {
		if _, err := tx.Exec(context.Background(), `SELECT set_config('app.sync_writer', 'on', true)`); err != nil {
			return err
		}
		return fn(tx)
	})
}

func TestLeadStoreMustExist(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t)
	tn := env.NewTenant(env.Admin(), "fk"+uuid.NewString()[:6])
	other := env.NewTenant(env.Admin(), "fk"+uuid.NewString()[:6])
	ctx := context.Background()
	c := ownerConn(t, env)
	count := func() int {
		var n int
		require.NoError(t, c.QueryRow(ctx, `SELECT count(*) FROM leads WHERE store_id = ANY ($1)`,
			[]uuid.UUID{tn.StoreID, other.StoreID}).Scan(&n))
		return n
	}

	// A missing store, alone or among existing ones.
	for _, stores := range [][]uuid.UUID{{uuid.New()}, {tn.StoreID, uuid.New(), tn.StoreID}} {
		requireFKViolation(t, writeLeads(t, c, func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, insertLead, stores)
			return err
		}))
	}
	require.Zero(t, count())

	// Existing stores.
	require.NoError(t, writeLeads(t, c, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, insertLead, []uuid.UUID{tn.StoreID, tn.StoreID, other.StoreID})
		return err
	}))
	require.Equal(t, 3, count())

	// A lead moved to a missing store; to an existing one.
	requireFKViolation(t, writeLeads(t, c, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `UPDATE leads SET store_id = $2, version = version + 1 WHERE store_id = $1`, other.StoreID, uuid.New())
		return err
	}))

	// A store with leads cannot be deleted, renumbered or truncated.
	_, err := c.Exec(ctx, `DELETE FROM stores WHERE id = $1`, tn.StoreID)
	requireFKViolation(t, err)
	_, err = c.Exec(ctx, `UPDATE stores SET id = $2 WHERE id = $1`, tn.StoreID, uuid.New())
	requireFKViolation(t, err)
	_, err = c.Exec(ctx, `TRUNCATE stores CASCADE`)
	requireFKViolation(t, err)
	err = pgx.BeginTxFunc(ctx, c, pgx.TxOptions{IsoLevel: pgx.RepeatableRead}, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `DELETE FROM stores WHERE id = $1`, tn.StoreID)
		return err
	})
	var pgErr *pgconn.PgError
	require.ErrorAs(t, err, &pgErr)
	require.Equal(t, "55000", pgErr.Code)
	require.Equal(t, 3, count())
	// Updating a store's other columns is untouched.
	_, err = c.Exec(ctx, `UPDATE stores SET name = name || '!' WHERE id = $1`, tn.StoreID)
	require.NoError(t, err)
}

// TestLeadStoreDeleteWaitsForInsert: a store's delete that starts while a
// transaction is inserting leads of that store waits for it, then sees its
// leads and fails, as with a foreign key.
func TestLeadStoreDeleteWaitsForInsert(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t)
	ctx := context.Background()
	// A store of its own, with nothing else referring to it.
	admin := ownerConn(t, env)
	tn := env.NewTenant(env.Admin(), "fk"+uuid.NewString()[:6])
	store := uuid.New()
	_, err := admin.Exec(ctx, `INSERT INTO stores (id, seller_id, name) VALUES ($1, $2, 'bare')`, store, tn.SellerID)
	require.NoError(t, err)

	ins := ownerConn(t, env)
	tx, err := ins.Begin(ctx)
	require.NoError(t, err)
	_, err = tx.Exec(ctx, `SELECT set_config('app.sync_writer', 'on', true)`)
	require.NoError(t, err)
	_, err = tx.Exec(ctx, insertLead, []uuid.UUID{store})
	require.NoError(t, err)

	del := ownerConn(t, env)
	var delPID uint32 = del.PgConn().PID()
	done := make(chan error, 1)
	go func() {
		_, err := del.Exec(ctx, `DELETE FROM stores WHERE id = $1`, store)
		done <- err
	}()
	// Wait until the delete waits for the inserter's lock.
	for {
		var waiting bool
		require.NoError(t, admin.QueryRow(ctx, `SELECT coalesce(wait_event_type = 'Lock', false) FROM pg_stat_activity WHERE pid = $1`, delPID).Scan(&waiting))
		if waiting {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("the delete did not wait for the inserting transaction: %v", err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	require.NoError(t, tx.Commit(ctx))
	requireFKViolation(t, <-done)
	var n int
	require.NoError(t, admin.QueryRow(ctx, `SELECT count(*) FROM leads WHERE store_id = $1`, store).Scan(&n))
	require.Equal(t, 1, n)
}
