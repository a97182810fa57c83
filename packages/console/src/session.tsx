// Who is signed in, for every page: restored from the refresh cookie when the console loads (the
// access token is in memory only, so a reload starts without one), ended by sign-out or when the
// platform refuses the cookie. Pages under <RequireSession> send the user to sign-in and back.
import { createContext, useCallback, useContext, useEffect, useState, type ReactNode } from 'react';
import { useLocation } from 'wouter';
import { api, onSessionExpired, renewSession, signIn as requestSignIn, signOut as requestSignOut, problemText } from './api/client';
import type { User } from './api/types';

export type { User };

interface Session {
  user: User | undefined;
  /** True until the first renewal attempt at load has answered. */
  loading: boolean;
  signIn(email: string, password: string): Promise<string | undefined>;
  signOut(): Promise<void>;
}

const SessionContext = createContext<Session | undefined>(undefined);

export function useSession(): Session {
  const s = useContext(SessionContext);
  if (!s) throw new Error('useSession outside <SessionProvider>');
  return s;
}

async function loadUser(): Promise<User | undefined> {
  const { data } = await api.GET('/users/me');
  return data;
}

/** The page to come back to after signing in: the current path, as `?next=`. */
export function signInPath(path: string): string {
  return path.startsWith('/sign-in') ? '/sign-in' : `/sign-in?next=${encodeURIComponent(path)}`;
}

export function SessionProvider({ children }: { children: ReactNode }) {
  const [user, setUser] = useState<User | undefined>();
  const [loading, setLoading] = useState(true);
  const [, navigate] = useLocation();

  useEffect(() => {
    let live = true;
    void (async () => {
      const restored = (await renewSession()) ? await loadUser() : undefined;
      if (live) {
        setUser(restored);
        setLoading(false);
      }
    })();
    return () => {
      live = false;
    };
  }, []);

  // the session ended under us (expired, revoked elsewhere): to sign-in, then back here
  useEffect(
    () =>
      onSessionExpired(() => {
        setUser(undefined);
        if (window.location.pathname === '/sign-in') return;
        navigate(signInPath(window.location.pathname + window.location.search), { replace: true });
      }),
    [navigate],
  );

  const signIn = useCallback(async (email: string, password: string) => {
    const problem = await requestSignIn(email, password);
    if (problem) return problemText(problem);
    const me = await loadUser();
    if (!me) return 'Signed in, but your account could not be read';
    setUser(me);
    return undefined;
  }, []);

  const signOut = useCallback(async () => {
    await requestSignOut();
    setUser(undefined);
    navigate('/sign-in');
  }, [navigate]);

  return <SessionContext.Provider value={{ user, loading, signIn, signOut }}>{children}</SessionContext.Provider>;
}

/** Renders its children for a signed-in user; anyone else goes to sign-in, with the way back. */
export function RequireSession({ children }: { children: ReactNode }) {
  const { user, loading } = useSession();
  const [, navigate] = useLocation();
  const away = !loading && !user;
  useEffect(() => {
    // `~`: from the root, also when this is inside a nested route
    if (away) navigate(`~${signInPath(window.location.pathname + window.location.search)}`, { replace: true });
  }, [away, navigate]);
  if (loading) return <p className="muted">Loading…</p>;
  return user ? <>{children}</> : null;
}
