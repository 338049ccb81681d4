import { type SyncStatus } from './api';
import { since } from './format';

/** A compact summary of the connection: online/offline, last sync, pending, conflicts. */
export function SyncPill({ status }: { status: SyncStatus | null }) {
  if (!status) {
    return <span className="pill pill--checking">Checking…</span>;
  }
  const state = status.online ? 'online' : 'offline';
  return (
    <span className={`pill pill--${state}`} title={status.detail || undefined} role="status">
      <span className="pill__dot" aria-hidden="true" />
      <strong>{status.online ? 'Online' : 'Offline'}</strong>
      <span className="pill__sep" aria-hidden="true" />
      <span>Last sync {since(status.lastContactAt)}</span>
      <span className="pill__sep" aria-hidden="true" />
      <span>{status.pending} pending</span>
      <span className="pill__sep" aria-hidden="true" />
      <span className={status.conflicts > 0 ? 'pill__conflicts' : undefined}>
        {status.conflicts} {status.conflicts === 1 ? 'conflict' : 'conflicts'}
      </span>
    </span>
  );
}
