import { useEffect, useState } from 'react';
import {
  type Account,
  type Store,
  type StoreList,
  type SyncStatus,
  listStores,
  onSyncStatus,
  signOut,
  syncStatus,
} from './api';
import { initials, since, textOn } from './format';
import { SyncPill } from './SyncPill';

interface Props {
  account: Account;
  onSignedOut: () => void;
}

type Load = { kind: 'loading' } | { kind: 'failed'; message: string } | { kind: 'ready'; list: StoreList };

export function StoresPage({ account, onSignedOut }: Props) {
  const [load, setLoad] = useState<Load>({ kind: 'loading' });
  const [status, setStatus] = useState<SyncStatus | null>(null);
  const [signOutError, setSignOutError] = useState('');

  const [reloads, setReloads] = useState(0);

  useEffect(() => {
    let live = true;
    listStores().then(
      (list) => {
        if (live) setLoad({ kind: 'ready', list });
      },
      (e: unknown) => {
        if (live) setLoad({ kind: 'failed', message: e instanceof Error ? e.message : String(e) });
      },
    );
    return () => {
      live = false;
    };
  }, [reloads]);

  useEffect(() => {
    let live = true;
    const off = onSyncStatus(setStatus);
    syncStatus().then(
      (s) => {
        if (live) setStatus(s);
      },
      () => undefined, // failures also arrive as events
    );
    return () => {
      live = false;
      off();
    };
  }, []);

  function refresh() {
    setLoad({ kind: 'loading' });
    setReloads((n) => n + 1);
  }

  return (
    <div className="page">
      <header className="topbar">
        <div className="topbar__brand">
          <div className="logo-mark logo-mark--small" aria-hidden="true">
            L
          </div>
          Leadify
        </div>
        <SyncPill status={status} />
        <div className="topbar__user">
          <div className="topbar__who">
            <strong>{account.fullName || account.email}</strong>
            <span className="muted">{account.email}</span>
          </div>
          <button
            type="button"
            className="button"
            onClick={() => {
              signOut().then(onSignedOut, (e: unknown) => {
                setSignOutError(e instanceof Error ? e.message : String(e));
              });
            }}
          >
            Sign out
          </button>
        </div>
      </header>
      <main className="content">
        {signOutError && (
          <p className="alert" role="alert">
            {signOutError}
          </p>
        )}
        <div className="content__head">
          <h1>Your stores</h1>
          {load.kind === 'ready' && <span className="count">{load.list.stores.length}</span>}
          <button type="button" className="button button--ghost" onClick={refresh}>
            Refresh
          </button>
        </div>
        {load.kind === 'loading' && <p className="muted">Loading stores…</p>}
        {load.kind === 'failed' && (
          <p className="alert" role="alert">
            {load.message}
          </p>
        )}
        {load.kind === 'ready' && <Stores list={load.list} />}
      </main>
    </div>
  );
}

function Stores({ list }: { list: StoreList }) {
  return (
    <>
      {list.offline && (
        <p className="banner" role="status">
          Offline — showing the stores saved on this computer (updated {since(list.updatedAt)}).
        </p>
      )}
      {list.stores.length === 0 ? (
        <p className="empty">You are not a member of any store yet. Ask your administrator to add you.</p>
      ) : (
        <ul className="grid" aria-label="Stores">
          {list.stores.map((s) => (
            <StoreCard key={s.id} store={s} />
          ))}
        </ul>
      )}
    </>
  );
}

function StoreCard({ store }: { store: Store }) {
  return (
    <li className="card" style={{ borderBottomColor: store.accentColor }}>
      <div className="card__band" style={{ background: store.primaryColor }} />
      <div className="card__body">
        {store.logoUrl ? (
          <img className="card__logo" src={store.logoUrl} alt="" />
        ) : (
          <div
            className="card__logo card__logo--initials"
            style={{ background: store.accentColor, color: textOn(store.accentColor) }}
          >
            {initials(store.name)}
          </div>
        )}
        <h2 className="card__name">{store.name}</h2>
        <div className="card__meta">
          <span className="swatch" style={{ background: store.primaryColor }} title={store.primaryColor} />
          <span className="swatch" style={{ background: store.accentColor }} title={store.accentColor} />
          {/* UUIDv7 ids share their leading timestamp: the tail tells stores apart. */}
          <code title={store.id}>{store.id.slice(-8)}</code>
        </div>
      </div>
    </li>
  );
}
