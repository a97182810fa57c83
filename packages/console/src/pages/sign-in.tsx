import { useState, type FormEvent } from 'react';
import { useLocation, useSearch } from 'wouter';
import { useSession } from '../session';
import { ErrorNote, useTitle } from '../ui';

/** Where to go after signing in: `?next=` when it is one of the console's own paths. */
function nextPath(search: string): string {
  const next = new URLSearchParams(search).get('next');
  return next && next.startsWith('/') && !next.startsWith('//') && !next.startsWith('/sign-in') ? next : '/organizations';
}

export function SignIn() {
  const { signIn } = useSession();
  const [, navigate] = useLocation();
  const search = useSearch();
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);
  useTitle('Sign in');

  async function submit(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    const form = new FormData(e.currentTarget);
    setBusy(true);
    const problem = await signIn(String(form.get('email')), String(form.get('password')));
    setBusy(false);
    if (problem) setError(problem);
    else navigate(nextPath(search), { replace: true });
  }

  return (
    <form className="card narrow" onSubmit={(e) => void submit(e)} aria-labelledby="sign-in-title">
      <h1 id="sign-in-title">Sign in</h1>
      <label>
        Email
        <input name="email" type="email" autoComplete="username" required autoFocus />
      </label>
      <label>
        Password
        <input name="password" type="password" autoComplete="current-password" required />
      </label>
      <ErrorNote error={error} />
      <button type="submit" disabled={busy}>
        Sign in
      </button>
    </form>
  );
}
