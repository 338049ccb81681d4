-- name: GetUserByEmail :one
SELECT * FROM users WHERE lower(email) = lower(sqlc.arg(email));

-- name: GetUser :one
SELECT * FROM users WHERE id = $1;

-- name: CreateUser :one
INSERT INTO users (id, email, full_name, password_hash, platform_admin)
VALUES ($1, $2, $3, $4, $5)
RETURNING *;

-- name: SetPassword :exec
UPDATE users SET password_hash = $2, updated_at = now() WHERE id = $1;

-- name: CreateSession :exec
INSERT INTO sessions (id, user_id, token_hash, device_name, client_ip, expires_at)
VALUES ($1, $2, $3, $4, $5, $6);

-- name: SessionByTokenHash :one
SELECT s.id AS session_id, s.expires_at, s.revoked_at, s.last_seen_at, u.*
FROM sessions s JOIN users u ON u.id = s.user_id
WHERE s.token_hash = $1;

-- name: TouchSession :exec
UPDATE sessions SET last_seen_at = now() WHERE id = $1 AND last_seen_at < now() - interval '1 minute';

-- name: RevokeSession :exec
UPDATE sessions SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL;

-- name: RevokeOtherSessions :execrows
UPDATE sessions SET revoked_at = now()
WHERE user_id = $1 AND id <> sqlc.arg(keep)::uuid AND revoked_at IS NULL;

-- name: ActorMemberships :many
SELECT m.store_id::uuid AS store_id, m.store_name::text AS store_name, m.seller_id::uuid AS seller_id,
  m.role::text AS role, m.granted::text[] AS granted, m.revoked::text[] AS revoked, m.epoch::bigint AS epoch,
  m.lead_lease_minutes::int AS lead_lease_minutes
FROM actor_memberships($1) AS m;

-- name: ThrottleState :many
SELECT key, failures, window_start, locked_until FROM login_throttle
WHERE key = ANY (sqlc.arg(keys)::text[]) FOR UPDATE;

-- name: RecordLoginFailure :one
-- Counts a failure in the current window (a new window once the old one has
-- passed) and locks the key once it reaches the limit.
INSERT INTO login_throttle AS t (key, failures, window_start, locked_until)
VALUES (sqlc.arg(key), 1, now(), CASE WHEN sqlc.arg(max_failures)::int <= 1 THEN now() + sqlc.arg(lock_for)::interval END)
ON CONFLICT (key) DO UPDATE SET
  failures = CASE WHEN t.window_start < now() - sqlc.arg(window_len)::interval THEN 1 ELSE t.failures + 1 END,
  window_start = CASE WHEN t.window_start < now() - sqlc.arg(window_len)::interval THEN now() ELSE t.window_start END,
  locked_until = CASE
    WHEN (CASE WHEN t.window_start < now() - sqlc.arg(window_len)::interval THEN 1 ELSE t.failures + 1 END) >= sqlc.arg(max_failures)::int
    THEN now() + sqlc.arg(lock_for)::interval
    ELSE t.locked_until END
RETURNING failures, locked_until;

-- name: LockedUntil :one
SELECT coalesce(max(locked_until), 'epoch')::timestamptz AS locked_until
FROM login_throttle WHERE key = ANY (sqlc.arg(keys)::text[]) AND locked_until > now();

-- name: ClearThrottle :exec
DELETE FROM login_throttle WHERE key = $1;

-- name: CreateInvitation :exec
INSERT INTO store_invitations (id, store_id, email, role, token_hash, invited_by, expires_at)
VALUES ($1, $2, $3, $4, $5, $6, $7);

-- name: InvitationByToken :one
SELECT i.id::uuid AS id, i.store_id::uuid AS store_id, i.email::text AS email, i.role::text AS role,
  i.expires_at::timestamptz AS expires_at, (i.accepted_at IS NOT NULL)::boolean AS accepted
FROM invitation_by_token($1) AS i;

-- name: MarkInvitationAccepted :execrows
UPDATE store_invitations SET accepted_at = now() WHERE id = $1 AND accepted_at IS NULL;
