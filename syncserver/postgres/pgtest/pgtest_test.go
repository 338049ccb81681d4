package pgtest_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/leadify/leadify/syncserver/postgres/pgtest"
)

func TestAppRoleIsUnprivileged(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	var super, bypass bool
	err := db.App.QueryRow(context.Background(),
		`SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user`).Scan(&super, &bypass)
	require.NoError(t, err)
	require.False(t, super, "the server must not connect as a superuser")
	require.False(t, bypass, "the server must not bypass row-level security")
	var owns int
	require.NoError(t, db.App.QueryRow(context.Background(),
		`SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tableowner = current_user`).Scan(&owns))
	require.Zero(t, owns, "the server must not own tables")
	_, err = db.App.Exec(context.Background(), `UPDATE audit_log SET action = 'x'`)
	require.ErrorContains(t, err, "permission denied", "audit_log is append-only")
}
