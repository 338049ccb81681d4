-- +goose Up
-- Subscribe streams hold an authenticated actor for as long as they are open
-- and, when they deliver changes themselves, must not keep using an actor
-- that a revoked session, a disabled user, a changed or removed membership or
-- a deleted store has made stale. Every such change signals leadify_auth once
-- per statement; each server instance's hub counts the signals and its
-- streams authenticate again before their next delivery. (Sessions are
-- created and touched far more often than revoked: only revocation, expiry
-- changes and deletion signal.)
-- +goose StatementBegin
CREATE FUNCTION notify_auth_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('leadify_auth', TG_TABLE_NAME);
  RETURN NULL;
END $$;
-- +goose StatementEnd
CREATE TRIGGER sessions_auth_changed AFTER UPDATE OF revoked_at, expires_at OR DELETE ON sessions
  FOR EACH STATEMENT EXECUTE FUNCTION notify_auth_changed();
CREATE TRIGGER users_auth_changed AFTER UPDATE OF disabled_at, platform_admin OR DELETE ON users
  FOR EACH STATEMENT EXECUTE FUNCTION notify_auth_changed();
CREATE TRIGGER store_members_auth_changed AFTER INSERT OR UPDATE OR DELETE ON store_members
  FOR EACH STATEMENT EXECUTE FUNCTION notify_auth_changed();
CREATE TRIGGER stores_auth_changed AFTER UPDATE OF deleted_at, seller_id OR DELETE ON stores
  FOR EACH STATEMENT EXECUTE FUNCTION notify_auth_changed();

-- +goose Down
DROP TRIGGER stores_auth_changed ON stores;
DROP TRIGGER store_members_auth_changed ON store_members;
DROP TRIGGER users_auth_changed ON users;
DROP TRIGGER sessions_auth_changed ON sessions;
DROP FUNCTION notify_auth_changed();
