-- name: CreateSeller :one
INSERT INTO sellers (id, name, owner_user_id) VALUES ($1, $2, $3) RETURNING *;

-- name: GetSeller :one
SELECT * FROM sellers WHERE id = $1;

-- name: ListAllSellers :many
SELECT * FROM sellers ORDER BY name, id;

-- name: ListSellersOwnedBy :many
SELECT * FROM sellers WHERE owner_user_id = $1 ORDER BY name, id;

-- name: CreateStore :one
INSERT INTO stores (id, seller_id, name, logo, logo_mime_type, primary_color, accent_color,
  default_carrier, auto_create_parcels, lead_lease_minutes, invoice, currency, timezone)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
RETURNING *;

-- name: GetStore :one
SELECT * FROM stores WHERE id = $1 AND deleted_at IS NULL;

-- name: GetStoreForUpdate :one
SELECT * FROM stores WHERE id = $1 AND deleted_at IS NULL FOR UPDATE;

-- name: ListStoresByID :many
SELECT * FROM stores WHERE id = ANY (sqlc.arg(ids)::uuid[]) AND deleted_at IS NULL ORDER BY name, id;

-- name: ListAllStores :many
SELECT * FROM stores WHERE deleted_at IS NULL ORDER BY name, id;

-- name: UpdateStore :one
UPDATE stores SET name = $2, logo = $3, logo_mime_type = $4, primary_color = $5, accent_color = $6,
  default_carrier = $7, auto_create_parcels = $8, lead_lease_minutes = $9, invoice = $10,
  timezone = $11, updated_at = now()
WHERE id = $1
RETURNING *;

-- name: UpsertMember :one
INSERT INTO store_members (store_id, user_id, role) VALUES ($1, $2, $3)
ON CONFLICT (store_id, user_id) DO UPDATE SET role = excluded.role,
  epoch = store_members.epoch + CASE WHEN store_members.role <> excluded.role THEN 1 ELSE 0 END
RETURNING *;

-- name: ListMembers :many
SELECT m.*, u.email, u.full_name
FROM store_members m JOIN users u ON u.id = m.user_id
WHERE m.store_id = $1
ORDER BY u.full_name, u.email;

-- name: GetMember :one
SELECT m.*, u.email, u.full_name
FROM store_members m JOIN users u ON u.id = m.user_id
WHERE m.store_id = $1 AND m.user_id = $2;

-- name: SetMemberPermissions :execrows
UPDATE store_members SET granted = $3, revoked = $4, epoch = epoch + 1 WHERE store_id = $1 AND user_id = $2;

-- name: DeleteMember :execrows
DELETE FROM store_members WHERE store_id = $1 AND user_id = $2;

-- name: CountStoreSellers :one
SELECT count(*) FROM store_members WHERE store_id = $1 AND role = 'seller';
