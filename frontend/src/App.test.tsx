import { act, render, screen, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import type { Account, StoreList, SyncStatus } from './api';
import * as api from './api';
import { App } from './App';

vi.mock('./api');

const sara: Account = {
  serverUrl: 'http://127.0.0.1:8080',
  userId: 'u1',
  email: 'sara@example.ma',
  fullName: 'Sara Benali',
  platformAdmin: false,
};

const stores: StoreList = {
  offline: false,
  updatedAt: new Date().toISOString(),
  stores: [
    { id: 's1-000000', sellerId: 'sel', name: 'Atlas Shop', primaryColor: '#0f766e', accentColor: '#f97316', logoUrl: '' },
    {
      id: 's2-000000',
      sellerId: 'sel',
      name: 'Casa Deals',
      primaryColor: '#1e3a5f',
      accentColor: '#fde047',
      logoUrl: 'data:image/png;base64,iVBORw0KGgo=',
    },
  ],
};

const online: SyncStatus = { online: true, lastContactAt: new Date().toISOString(), pending: 0, conflicts: 0, detail: '' };

// Listeners the UI registered, so tests can play Go's events.
let sessionExpired: () => void = () => undefined;
let statusListener: (s: SyncStatus) => void = () => undefined;

beforeEach(() => {
  vi.mocked(api.currentAccount).mockResolvedValue(null);
  vi.mocked(api.defaultServerUrl).mockResolvedValue('http://127.0.0.1:8080');
  vi.mocked(api.listStores).mockResolvedValue(stores);
  vi.mocked(api.syncStatus).mockResolvedValue(online);
  vi.mocked(api.signOut).mockResolvedValue();
  vi.mocked(api.onSessionExpired).mockImplementation((fn) => {
    sessionExpired = fn;
    return () => undefined;
  });
  vi.mocked(api.onSyncStatus).mockImplementation((fn) => {
    statusListener = fn;
    return () => undefined;
  });
});

describe('sign-in', () => {
  it('signs in with the keyboard: email focused, Tab, password, Enter', async () => {
    vi.mocked(api.signIn).mockResolvedValue(sara);
    const user = userEvent.setup();
    render(<App />);

    const email = await screen.findByLabelText('Email');
    expect(email).toHaveFocus();
    expect(await screen.findByDisplayValue('http://127.0.0.1:8080')).toBeInTheDocument();

    await user.keyboard('sara@example.ma');
    await user.tab();
    expect(screen.getByLabelText('Password')).toHaveFocus();
    await user.keyboard('s3cret-pass{Enter}');

    expect(api.signIn).toHaveBeenCalledWith('http://127.0.0.1:8080', 'sara@example.ma', 's3cret-pass');
    expect(await screen.findByText('Sara Benali')).toBeInTheDocument();
    const list = screen.getByRole('list', { name: 'Stores' });
    expect(within(list).getAllByRole('listitem')).toHaveLength(2);
    expect(within(list).getByText('Atlas Shop')).toBeInTheDocument();
    expect(within(list).getByText('AS')).toHaveStyle({ background: '#f97316' });
    expect(screen.getByRole('status')).toHaveTextContent(/Online.*Last sync just now.*0 pending.*0 conflicts/);
  });

  it('shows why signing in failed and lets the user retry', async () => {
    vi.mocked(api.signIn).mockRejectedValueOnce(new Error('wrong email or password'));
    const user = userEvent.setup();
    render(<App />);

    await user.type(await screen.findByLabelText('Email'), 'sara@example.ma');
    await user.type(screen.getByLabelText('Password'), 'nope{Enter}');
    expect(await screen.findByRole('alert')).toHaveTextContent('wrong email or password');
    expect(screen.getByRole('button', { name: 'Sign in' })).toBeEnabled();
  });
});

describe('stores page', () => {
  it('restores a saved session and marks an offline list', async () => {
    vi.mocked(api.currentAccount).mockResolvedValue(sara);
    vi.mocked(api.listStores).mockResolvedValue({ ...stores, offline: true });
    vi.mocked(api.syncStatus).mockResolvedValue({ ...online, online: false, detail: 'server unreachable — working offline' });
    render(<App />);

    expect(await screen.findByText(/Offline — showing the stores saved on this computer/)).toBeInTheDocument();
    expect(screen.getByText('Casa Deals')).toBeInTheDocument();
    expect(await screen.findByTitle('server unreachable — working offline')).toHaveTextContent('Offline');
    expect(api.signIn).not.toHaveBeenCalled();
  });

  it('follows status events from Go', async () => {
    vi.mocked(api.currentAccount).mockResolvedValue(sara);
    render(<App />);
    expect(await screen.findByText('Online')).toBeInTheDocument();

    act(() => {
      statusListener({ ...online, online: false, pending: 3, conflicts: 1 });
    });
    expect(screen.getByText('Offline')).toBeInTheDocument();
    expect(screen.getByText('3 pending')).toBeInTheDocument();
    expect(screen.getByText('1 conflict')).toHaveClass('pill__conflicts');
  });

  it('shows a store-list error', async () => {
    vi.mocked(api.currentAccount).mockResolvedValue(sara);
    vi.mocked(api.listStores).mockRejectedValue(new Error('you are not allowed to do this'));
    render(<App />);
    expect(await screen.findByRole('alert')).toHaveTextContent('you are not allowed to do this');
  });

  it('says so when the user has no store', async () => {
    vi.mocked(api.currentAccount).mockResolvedValue(sara);
    vi.mocked(api.listStores).mockResolvedValue({ ...stores, stores: [] });
    render(<App />);
    expect(await screen.findByText(/not a member of any store yet/)).toBeInTheDocument();
  });

  it('signs out', async () => {
    vi.mocked(api.currentAccount).mockResolvedValue(sara);
    const user = userEvent.setup();
    render(<App />);
    await user.click(await screen.findByRole('button', { name: 'Sign out' }));
    expect(api.signOut).toHaveBeenCalled();
    expect(await screen.findByRole('form', { name: 'Sign in' })).toBeInTheDocument();
  });

  it('stays signed in when signing out fails', async () => {
    vi.mocked(api.currentAccount).mockResolvedValue(sara);
    vi.mocked(api.signOut).mockRejectedValue(new Error('forget session: disk I/O error'));
    const user = userEvent.setup();
    render(<App />);
    await user.click(await screen.findByRole('button', { name: 'Sign out' }));
    expect(await screen.findByRole('alert')).toHaveTextContent('forget session: disk I/O error');
    expect(screen.getByText('Sara Benali')).toBeInTheDocument();
  });

  it('returns to sign-in when the server ends the session', async () => {
    vi.mocked(api.currentAccount).mockResolvedValue(sara);
    render(<App />);
    await screen.findByText('Atlas Shop');
    act(() => {
      sessionExpired();
    });
    expect(screen.getByText('Your session has ended — please sign in again.')).toBeInTheDocument();
    expect(screen.getByLabelText('Email')).toHaveFocus();
  });
});

it('reports a local failure at start', async () => {
  vi.mocked(api.currentAccount).mockRejectedValue(new Error('open local database: disk full'));
  render(<App />);
  expect(await screen.findByRole('alert')).toHaveTextContent('open local database: disk full');
});
