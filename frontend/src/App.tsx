import { useEffect, useState } from 'react';
import { type Account, currentAccount, onSessionExpired } from './api';
import { SignIn } from './SignIn';
import { StoresPage } from './StoresPage';

type View =
  | { kind: 'loading' }
  | { kind: 'failed'; message: string }
  | { kind: 'signedOut'; notice?: string }
  | { kind: 'signedIn'; account: Account };

export function App() {
  const [view, setView] = useState<View>({ kind: 'loading' });

  useEffect(() => {
    let live = true;
    currentAccount().then(
      (account) => {
        if (live) setView(account ? { kind: 'signedIn', account } : { kind: 'signedOut' });
      },
      (e: unknown) => {
        if (live) setView({ kind: 'failed', message: e instanceof Error ? e.message : String(e) });
      },
    );
    const off = onSessionExpired(() => {
      setView({ kind: 'signedOut', notice: 'Your session has ended — please sign in again.' });
    });
    return () => {
      live = false;
      off();
    };
  }, []);

  switch (view.kind) {
    case 'loading':
      return <div className="splash" aria-busy="true" />;
    case 'failed':
      return (
        <div className="splash">
          <p className="alert" role="alert">
            {view.message}
          </p>
        </div>
      );
    case 'signedOut':
      return (
        <SignIn
          {...(view.notice ? { notice: view.notice } : {})}
          onSignedIn={(account) => {
            setView({ kind: 'signedIn', account });
          }}
        />
      );
    case 'signedIn':
      return (
        <StoresPage
          account={view.account}
          onSignedOut={() => {
            setView({ kind: 'signedOut' });
          }}
        />
      );
  }
}
