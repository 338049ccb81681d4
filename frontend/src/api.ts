// The one module that talks to Go. It wraps the generated Wails bindings so the
// rest of the UI sees plain promises and Error objects; tests replace it with
// vi.mock('./api').
import * as Session from './wailsjs/go/app/Session';
import * as Stores from './wailsjs/go/app/Stores';
import * as Sync from './wailsjs/go/app/Sync';
import type { app } from './wailsjs/go/models';
import { EventsOn } from './wailsjs/runtime/runtime';

export type Account = app.Account;
export type Store = app.Store;
export type StoreList = app.StoreList;
export type SyncStatus = app.Status;

// Wails rejects with the Go error's message as a bare string.
async function call<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    throw e instanceof Error ? e : new Error(String(e));
  }
}

export function signIn(serverUrl: string, email: string, password: string): Promise<Account> {
  return call(() => Session.SignIn(serverUrl, email, password));
}

export function signOut(): Promise<void> {
  return call(() => Session.SignOut());
}

/** The saved account, or null when nobody is signed in. */
export async function currentAccount(): Promise<Account | null> {
  // Go returns a nil *Account (null) when signed out; the binding's type omits it.
  const account: Account | null = await call(() => Session.Current());
  return account;
}

export function defaultServerUrl(): Promise<string> {
  return call(() => Session.DefaultServerURL());
}

export function listStores(): Promise<StoreList> {
  return call(() => Stores.List());
}

export function syncStatus(): Promise<SyncStatus> {
  return call(() => Sync.Status());
}

/** Calls fn with each status Go reports; returns the unsubscribe function. */
export function onSyncStatus(fn: (status: SyncStatus) => void): () => void {
  return EventsOn('sync:status', (status: SyncStatus) => {
    fn(status);
  });
}

/** Calls fn when the server has ended the session (Go has already forgotten it). */
export function onSessionExpired(fn: () => void): () => void {
  return EventsOn('session:expired', () => {
    fn();
  });
}
