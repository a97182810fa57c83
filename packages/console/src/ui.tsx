// Small pieces every page uses: loading data, showing a refusal, copying a secret, naming devices by id.
import { useCallback, useEffect, useState, type DependencyList } from 'react';
import { api, problemText } from './api/client';

/** The outcome of an openapi-fetch call. */
type Result<T> = { data?: T; error?: unknown };

export interface Loaded<T> {
  data: T | undefined;
  error: string | undefined;
  reload(): void;
}

/** Loads on mount and whenever `deps` change; `reload()` loads again (after a change). */
export function useLoad<T>(load: () => Promise<Result<T>>, deps: DependencyList): Loaded<T> {
  const [state, setState] = useState<{ data?: T; error?: string }>({});
  const [round, setRound] = useState(0);
  useEffect(() => {
    let live = true;
    load().then(
      ({ data, error }) => live && setState(error === undefined ? { data } : { error: problemText(error) }),
      (e: unknown) => live && setState({ error: problemText(e instanceof Error ? e.message : e) }),
    );
    return () => {
      live = false;
    };
  }, [...deps, round]);
  const reload = useCallback(() => setRound((r) => r + 1), []);
  return { data: state.data, error: state.error, reload };
}

export function ErrorNote({ error }: { error: string | undefined }) {
  return error ? (
    <p role="alert" className="error">
      {error}
    </p>
  ) : null;
}

/** A secret shown once (a new device, a rotated secret), with a button that copies it. */
export function SecretOnce({ secret, onDone }: { secret: string; onDone(): void }) {
  const [copied, setCopied] = useState(false);
  return (
    <section className="secret" aria-label="Device secret" data-testid="secret">
      <p>
        <strong>The device secret, shown only now.</strong> Store it on the device: it cannot be read again (rotate it for a new one).
      </p>
      <div className="row">
        <code data-testid="secret-value">{secret}</code>
        <button
          type="button"
          onClick={() => {
            void navigator.clipboard.writeText(secret).then(() => setCopied(true));
          }}
        >
          {copied ? 'Copied' : 'Copy'}
        </button>
        <button type="button" className="secondary" onClick={onDone}>
          Done
        </button>
      </div>
    </section>
  );
}

export function formatTime(iso: string): string {
  return new Date(iso).toLocaleString();
}

/** The window's title names the page (for tabs, history and screen readers). */
export function useTitle(title: string | undefined): void {
  useEffect(() => {
    document.title = title ? `${title} · Fleetwire` : 'Fleetwire';
  }, [title]);
}

/** The connection types a form asks for, both checked at first: its `type` fields (FormData.getAll('type')). */
export function ConnectionTypeChoices() {
  return (
    <>
      <label className="check">
        <input type="checkbox" name="type" value="publish" defaultChecked /> publish
      </label>
      <label className="check">
        <input type="checkbox" name="type" value="subscribe" defaultChecked /> subscribe
      </label>
    </>
  );
}

/** The names of the devices a page of rows names by id (one request each: a page is 20 rows); a device that is gone has none. */
export function useDeviceNames(orgId: string, ids: string[]): Map<string, string> {
  const key = [...new Set(ids)].sort().join(',');
  const names = useLoad(async () => {
    const found = await Promise.all(key ? key.split(',').map((id) => api.GET('/orgs/{org}/devices/{id}', { params: { path: { org: orgId, id } } }).then((r) => (r.data ? [[id, r.data.name] as const] : []))) : []);
    return { data: new Map(found.flat()) };
  }, [orgId, key]);
  return names.data ?? new Map();
}

/** A page's view as a query string: the fields that are set, in the order given (an empty string, 0, false or undefined is left out); `?…`, or '' when none is. */
export function searchOf(fields: Record<string, string | number | boolean | undefined>): string {
  const q = new URLSearchParams();
  for (const [key, value] of Object.entries(fields)) if (value !== undefined && value !== '' && value !== 0 && value !== false) q.set(key, String(value));
  const s = q.toString();
  return s ? `?${s}` : '';
}
