import { type SyntheticEvent, useEffect, useState } from 'react';
import { type Account, defaultServerUrl, signIn } from './api';

interface Props {
  onSignedIn: (account: Account) => void;
  /** Shown above the form, e.g. why the user was signed out. */
  notice?: string;
}

export function SignIn({ onSignedIn, notice }: Props) {
  const [serverUrl, setServerUrl] = useState('');
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    let live = true;
    defaultServerUrl().then(
      (url) => {
        // Keep whatever the user may already have typed.
        if (live) setServerUrl((typed) => typed || url);
      },
      () => undefined, // the field stays empty and the user types the address
    );
    return () => {
      live = false;
    };
  }, []);

  async function submit(e: SyntheticEvent<HTMLFormElement>) {
    e.preventDefault();
    setBusy(true);
    setError('');
    try {
      onSignedIn(await signIn(serverUrl, email, password));
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
      setBusy(false);
    }
  }

  return (
    <div className="signin">
      <aside className="signin__brand">
        <div className="logo-mark" aria-hidden="true">
          L
        </div>
        <h1>Leadify</h1>
        <p>Cash-on-delivery leads, from the first call to the cash.</p>
      </aside>
      <main className="signin__panel">
        <form
          className="signin__form"
          onSubmit={(e) => {
            void submit(e);
          }}
          aria-label="Sign in"
        >
          <h2>Sign in</h2>
          <p className="muted">Use the account your Leadify administrator gave you.</p>
          {notice && !error && <p className="notice">{notice}</p>}
          <label>
            Email
            <input
              type="email"
              name="email"
              autoComplete="username"
              autoFocus
              required
              value={email}
              onChange={(e) => {
                setEmail(e.target.value);
              }}
            />
          </label>
          <label>
            Password
            <input
              type="password"
              name="password"
              autoComplete="current-password"
              required
              value={password}
              onChange={(e) => {
                setPassword(e.target.value);
              }}
            />
          </label>
          <label>
            Server
            <input
              type="text"
              name="server"
              inputMode="url"
              spellCheck={false}
              required
              value={serverUrl}
              onChange={(e) => {
                setServerUrl(e.target.value);
              }}
            />
          </label>
          <div className="alert" role="alert" aria-live="assertive">
            {error}
          </div>
          <button type="submit" className="button button--primary" disabled={busy}>
            {busy ? 'Signing in…' : 'Sign in'}
          </button>
        </form>
      </main>
    </div>
  );
}
