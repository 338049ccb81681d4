-- name: InsertAudit :exec
INSERT INTO audit_log (id, store_id, actor_user_id, action, target_type, target_id, summary)
VALUES ($1, $2, $3, $4, $5, $6, $7);

-- name: ListAudit :many
SELECT a.*, coalesce(u.email, '') AS actor_email
FROM audit_log a LEFT JOIN users u ON u.id = a.actor_user_id
WHERE a.store_id = sqlc.arg(store_id)
  AND (sqlc.narg(before_at)::timestamptz IS NULL OR (a.at, a.id) < (sqlc.narg(before_at)::timestamptz, sqlc.narg(before_id)::uuid))
ORDER BY a.at DESC, a.id DESC
LIMIT sqlc.arg(lim);

-- name: InsertCarrierAccount :exec
INSERT INTO carrier_accounts (id, store_id, carrier, label, credentials) VALUES ($1, $2, $3, $4, $5);

-- name: ListCarrierAccountSecrets :many
SELECT id, credentials FROM carrier_accounts WHERE id > sqlc.arg(after)::uuid ORDER BY id LIMIT sqlc.arg(lim);

-- name: SetCarrierAccountSecret :exec
UPDATE carrier_accounts SET credentials = $2, updated_at = now() WHERE id = $1;

-- name: GetCarrierAccount :one
SELECT * FROM carrier_accounts WHERE id = $1;
