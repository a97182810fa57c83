// A device's twins (docs/twins.md), the Twin tab of its page: which twin (the default one first,
// then the named ones, and a new name to make one), desired, reported and the delta side by side,
// tags, when each leaf last changed, the values the device refused, the history of changes, and
// for `twins:write` an editor of desired and tags that sends only the merge patch from the version
// loaded, with If-Match, and shows a conflict when the twin moved on meanwhile.
//
// Live: the twin is read again every few seconds while the tab is open (and the browser tab is
// visible); a change by the device or another user shows without a reload.
import { Fragment, useCallback, useEffect, useRef, useState, type FormEvent, type ReactNode } from 'react';
import { Link, useLocation, useSearch } from 'wouter';
import { api, problemText } from '../api/client';
import type { Twin, TwinChange } from '../api/types';
import { useOrg } from '../app';
import { ErrorNote, formatTime, useLoad } from '../ui';
import { applyMergePatch, isObject, leafCount, leafStamps, mergePatchBetween, parseSection, pointerKey, type Json, type JsonObject } from './twin-json';

export const defaultTwin = 'default';
const pollMs = 3000; // how often the open tab reads the twin again
const historyPage = 20;
const recentLeaves = 8; // leaves in the "last changed" list
// the platform's rule for names (src/twins/service.ts), checked here to say so before asking
const namePattern = /^[a-z0-9][a-z0-9_-]{0,63}$/;
const reservedNames = new Set(['get', 'update', 'delta', 'documents', 'accepted', 'rejected', 'history', 'twin', 'twins']);

interface Where {
  org: string;
  id: string;
  name: string;
}

const pretty = (v: unknown) => JSON.stringify(v ?? {}, null, 2);
const msTime = (ms: number) => new Date(ms).toLocaleString();

function readTwin(w: Where) {
  return w.name === defaultTwin
    ? api.GET('/orgs/{org}/devices/{id}/twin', { params: { path: { org: w.org, id: w.id } } })
    : api.GET('/orgs/{org}/devices/{id}/twins/{name}', { params: { path: w } });
}

function isNotFound(problem: unknown): boolean {
  return isObject(problem) && problem.code === 'twin.not_found';
}

interface TwinState {
  doc?: Twin;
  error?: string;
  /** A named twin not made yet: its first update makes it. */
  missing: boolean;
}

/** The twin, read now and again every few seconds; `refresh()` reads it at once and answers it. */
function useTwin(w: Where): TwinState & { refresh(): Promise<Twin | undefined>; replace(doc: Twin): void } {
  const [state, setState] = useState<TwinState>({ missing: false });
  const missing = useRef(false); // a twin not made yet is not asked for again (only this user's save makes it here)
  const current = useRef(w);
  current.current = w;
  const key = `${w.org}/${w.id}/${w.name}`;
  const refresh = useCallback(async () => {
    const asked = `${current.current.org}/${current.current.id}/${current.current.name}`;
    const { data, error } = await readTwin(current.current).catch((e: unknown) => ({ data: undefined, error: e instanceof Error ? e.message : e }));
    if (asked !== `${current.current.org}/${current.current.id}/${current.current.name}`) return undefined; // another twin was chosen meanwhile
    missing.current = false;
    if (data) {
      // the same version is the same twin: no new state, no re-render
      setState((s) => (s.doc && s.doc.version === data.version && s.doc.name === data.name && !s.error ? s : { doc: data, missing: false }));
      return data;
    }
    if (isNotFound(error) && current.current.name !== defaultTwin) {
      missing.current = true;
      setState({ missing: true });
    } else {
      setState((s) => ({ ...s, error: problemText(error) }));
    }
    return undefined;
  }, []);
  useEffect(() => {
    setState({ missing: false });
    missing.current = false;
    void refresh();
    const timer = setInterval(() => {
      if (!document.hidden && !missing.current) void refresh();
    }, pollMs);
    return () => clearInterval(timer);
  }, [key, refresh]);
  const replace = useCallback((doc: Twin) => {
    missing.current = false;
    setState({ doc, missing: false });
  }, []);
  return { ...state, refresh, replace };
}

/** The Twin tab: `twin` in the address names the twin shown (the default one without it). */
export function DeviceTwin({ deviceId }: { deviceId: string }) {
  const { org, canWriteTwins } = useOrg();
  const search = useSearch();
  const [, navigate] = useLocation();
  const name = new URLSearchParams(search).get('twin') || defaultTwin;
  const where = { org: org.id, id: deviceId, name };
  const twin = useTwin(where);
  const list = useLoad(() => api.GET('/orgs/{org}/devices/{id}/twins', { params: { path: { org: org.id, id: deviceId } } }), [org.id, deviceId]);
  const version = twin.doc?.version;
  const { reload: reloadList } = list;
  useEffect(() => reloadList(), [version, reloadList]);
  const editing = useRef(false); // the editor holds an unsaved edit
  const setEditing = useCallback((dirty: boolean) => {
    editing.current = dirty;
  }, []);
  const choose = (next: string) => {
    if (next === name || (editing.current && !window.confirm('Leave your unsaved edit of this twin?'))) return;
    editing.current = false;
    navigate(`/devices/${deviceId}?view=twin${next === defaultTwin ? '' : `&twin=${encodeURIComponent(next)}`}`);
  };

  const names = list.data?.twins ?? [];
  return (
    <section aria-label="Device twin">
      <div className="toolbar">
        <label>
          Show twin
          <select value={name} onChange={(e) => choose(e.target.value)}>
            {names.map((t) => (
              <option key={t.name} value={t.name}>
                {t.name} (version {t.version})
              </option>
            ))}
            {!names.some((t) => t.name === name) && <option value={name}>{name} (new)</option>}
          </select>
        </label>
        {canWriteTwins && <NewTwin onOpen={choose} />}
      </div>
      <ErrorNote error={list.error ?? twin.error} />
      {twin.missing && (
        <p className="muted" data-testid="twin-new">
          The device has no twin named <strong>{name}</strong> yet{canWriteTwins ? ': it is made when you save its desired state or tags below.' : '.'}
        </p>
      )}
      {twin.doc && <TwinView doc={twin.doc} />}
      {canWriteTwins && (twin.doc || twin.missing) && <TwinEditor key={name} where={where} loaded={twin.doc ?? emptyTwin(deviceId, name)} refresh={twin.refresh} onSaved={twin.replace} onDirty={setEditing} />}
      {twin.doc && twin.doc.version > 0 && <TwinHistory where={where} version={twin.doc.version} />}
    </section>
  );
}

/** What a named twin not made yet is: the platform's answer for one at version 0. */
function emptyTwin(deviceId: string, name: string): Twin {
  return { device_id: deviceId, name, version: 0, desired: {}, reported: {}, delta: {}, tags: {}, metadata: { desired: {}, reported: {}, tags: {} }, rejected: {} };
}

/** A name for a new twin, checked as the platform checks it, then opened (it is made by its first save). */
function NewTwin({ onOpen }: { onOpen(name: string): void }) {
  const [problem, setProblem] = useState<string>();
  function open(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    const name = String(new FormData(e.currentTarget).get('name') ?? '').trim();
    if (!namePattern.test(name)) return setProblem('A twin name is 1 to 64 of a-z, 0-9, _ and -, starting with a letter or digit.');
    if (reservedNames.has(name)) return setProblem(`“${name}” is a word of the device protocols: choose another name.`);
    setProblem(undefined);
    e.currentTarget.reset();
    onOpen(name);
  }
  return (
    <form className="row" aria-label="New named twin" onSubmit={open}>
      <label>
        New named twin
        <input name="name" maxLength={64} placeholder="e.g. firmware" />
      </label>
      <button type="submit" className="secondary">
        Open
      </button>
      <ErrorNote error={problem} />
    </form>
  );
}

/** Pretty JSON whose leaves say, on hover, when they last changed. */
/** Pretty JSON whose leaves say, on hover, when they last changed; members in `refused` (JSON pointer → why) are marked. */
function JsonView({ value, stamps, label, refused = {} }: { value: unknown; stamps: unknown; label: string; refused?: Record<string, string> }) {
  return (
    // focusable: it scrolls on its own when long
    <pre className="json" tabIndex={0} data-testid={`twin-${label.toLowerCase()}`}>
      {render(value as Json, stamps, 0, '', refused)}
    </pre>
  );
}

const isShortList = (value: Json): value is Json[] => Array.isArray(value) && value.every((v) => !isObject(v) && !Array.isArray(v)) && JSON.stringify(value).length <= 60;

function render(value: Json, stamps: unknown, depth: number, pointer: string, refused: Record<string, string>): ReactNode {
  const pad = '  '.repeat(depth);
  if (isObject(value) && Object.keys(value).length > 0) {
    const entries = Object.entries(value);
    return (
      <>
        {'{\n'}
        {entries.map(([k, v], i) => {
          const at = `${pointer}/${pointerKey(k)}`;
          const why = refused[at];
          return (
            <Fragment key={k}>
              {pad}
              {'  '}
              {why === undefined ? (
                <span className="key">{JSON.stringify(k)}</span>
              ) : (
                <span className="key refused" title={`refused by the device: ${why}`}>
                  {JSON.stringify(k)}
                </span>
              )}
              {': '}
              {render(v, isObject(stamps) ? stamps[k] : stamps, depth + 1, at, refused)}
              {i < entries.length - 1 ? ',\n' : '\n'}
            </Fragment>
          );
        })}
        {pad}
        {'}'}
      </>
    );
  }
  // a leaf: a scalar, an array (set whole) or an empty object; a short array of scalars on one line
  const text = isShortList(value) ? `[${value.map((v) => JSON.stringify(v)).join(', ')}]` : JSON.stringify(value, null, 2).replaceAll('\n', `\n${pad}`);
  return typeof stamps === 'number' ? <span title={`changed ${msTime(stamps)}`}>{text}</span> : text;
}

const deltaText = (n: number) => (n === 0 ? 'none: the device reports what is desired' : `${n} value${n === 1 ? '' : 's'} desired and not reported yet`);

function TwinView({ doc }: { doc: Twin }) {
  const recent = [
    ...leafStamps(doc.metadata.desired).map(([p, at]) => ['desired', p, at] as const),
    ...leafStamps(doc.metadata.reported).map(([p, at]) => ['reported', p, at] as const),
    ...leafStamps(doc.metadata.tags ?? {}).map(([p, at]) => ['tags', p, at] as const),
  ]
    .sort((a, b) => b[2] - a[2])
    .slice(0, recentLeaves);
  const rejected = Object.entries(doc.rejected);
  return (
    <>
      <dl className="facts">
        <dt>Version</dt>
        <dd data-testid="twin-version">{doc.version}</dd>
        <dt>Updated</dt>
        <dd>{doc.updated_at ? formatTime(doc.updated_at) : 'never written'}</dd>
        <dt>Delta</dt>
        <dd data-testid="twin-in-sync">{deltaText(leafCount(doc.delta as Json))}</dd>
      </dl>
      <div className="twin-sections">
        <section aria-label="Desired state">
          <h3>Desired</h3>
          <JsonView value={doc.desired} stamps={doc.metadata.desired} label="Desired" refused={Object.fromEntries(rejected.map(([pointer, r]) => [pointer, r.reason]))} />
        </section>
        <section aria-label="Reported state">
          <h3>Reported</h3>
          <JsonView value={doc.reported} stamps={doc.metadata.reported} label="Reported" />
        </section>
        <section aria-label="Delta">
          <h3>Delta</h3>
          <JsonView value={doc.delta} stamps={doc.metadata.desired} label="Delta" />
        </section>
      </div>
      <div className="twin-sections two">
        <section aria-label="Tags">
          <h3>Tags</h3>
          <p className="muted">Service-side only: never shown to the device.</p>
          <JsonView value={doc.tags ?? {}} stamps={doc.metadata.tags} label="Tags" />
        </section>
        <section aria-label="Last changed">
          <h3>Last changed</h3>
          {recent.length === 0 ? (
            <p className="muted">Nothing written yet.</p>
          ) : (
            <table aria-label="Last changed values">
              <thead>
                <tr>
                  <th>Value</th>
                  <th>Changed</th>
                </tr>
              </thead>
              <tbody>
                {recent.map(([section, pointer, at]) => (
                  <tr key={`${section}${pointer}`}>
                    <td>
                      <code>
                        {section}
                        {pointer}
                      </code>
                    </td>
                    <td>{msTime(at)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </section>
      </div>
      {rejected.length > 0 && (
        <section aria-label="Refused values">
          <h3>Refused by the device</h3>
          <p className="muted">Left out of the delta until desired changes there.</p>
          <table aria-label="Refused values">
            <thead>
              <tr>
                <th>Desired value</th>
                <th>Value</th>
                <th>Why</th>
                <th>When</th>
              </tr>
            </thead>
            <tbody>
              {rejected.map(([pointer, r]) => (
                <tr key={pointer}>
                  <td>
                    <code>desired{pointer}</code>
                  </td>
                  <td>
                    <code>{JSON.stringify(r.value)}</code>
                  </td>
                  <td className="reason">{r.reason}</td>
                  <td>
                    {msTime(r.at)} (version {r.version})
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </section>
      )}
    </>
  );
}

/** The update the editor sent and was refused for a version that moved on. */
interface Conflict {
  loaded: number;
  current: number | undefined;
  patch: { desired?: JsonObject; tags?: JsonObject };
}

function sectionsOf(doc: Twin): { desired: JsonObject; tags: JsonObject } {
  return { desired: doc.desired as JsonObject, tags: (doc.tags ?? {}) as JsonObject };
}

/**
 * Desired and tags as JSON text. Saving sends the merge patch from the version loaded to the text,
 * with If-Match: that version. While the text is untouched it follows the twin as it changes.
 */
function TwinEditor({ where, loaded, refresh, onSaved, onDirty }: { where: Where; loaded: Twin; refresh(): Promise<Twin | undefined>; onSaved(doc: Twin): void; onDirty(dirty: boolean): void }) {
  const [base, setBase] = useState(loaded);
  const [desiredText, setDesiredText] = useState(() => pretty(loaded.desired));
  const [tagsText, setTagsText] = useState(() => pretty(loaded.tags));
  const [errors, setErrors] = useState<{ desired?: string; tags?: string }>({});
  const [problem, setProblem] = useState<string>();
  const [note, setNote] = useState<string>();
  const [conflict, setConflict] = useState<Conflict>();
  const [busy, setBusy] = useState(false);
  const dirty = desiredText !== pretty(base.desired) || tagsText !== pretty(base.tags);
  useEffect(() => {
    onDirty(dirty);
  }, [dirty, onDirty]);

  // an untouched editor follows the twin; an edit keeps the version it started from
  useEffect(() => {
    if (dirty || conflict || loaded.version === base.version) return;
    start(loaded);
  }, [loaded, dirty, conflict]);

  function start(doc: Twin, texts?: { desired: Json; tags: Json }) {
    setBase(doc);
    setDesiredText(pretty(texts?.desired ?? doc.desired));
    setTagsText(pretty(texts?.tags ?? doc.tags));
    setErrors({});
    setProblem(undefined);
  }

  async function save(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    setNote(undefined);
    setProblem(undefined);
    const desired = parseSection(desiredText, 'Desired');
    const tags = parseSection(tagsText, 'Tags');
    setErrors({ desired: desired.error, tags: tags.error });
    if (desired.error !== undefined || tags.error !== undefined) return; // shown beside the field, nothing sent
    const from = sectionsOf(base);
    const patch: Conflict['patch'] = {};
    const desiredPatch = mergePatchBetween(from.desired, desired.value);
    const tagsPatch = mergePatchBetween(from.tags, tags.value);
    if (Object.keys(desiredPatch).length) patch.desired = desiredPatch;
    if (Object.keys(tagsPatch).length) patch.tags = tagsPatch;
    if (!patch.desired && !patch.tags) return setNote(`Nothing to save: this is version ${base.version} as loaded.`);
    setBusy(true);
    const init = { params: { path: { org: where.org, id: where.id }, header: { 'if-match': `"${base.version}"` } }, body: patch };
    const { data, error } =
      where.name === defaultTwin
        ? await api.PATCH('/orgs/{org}/devices/{id}/twin', init)
        : await api.PATCH('/orgs/{org}/devices/{id}/twins/{name}', { ...init, params: { ...init.params, path: { ...init.params.path, name: where.name } } });
    setBusy(false);
    if (data) {
      setConflict(undefined);
      start(data);
      setNote(`Saved: version ${data.version}.`);
      onSaved(data);
      return;
    }
    if (isObject(error) && error.code === 'twin.version_conflict') {
      const current = typeof error.version === 'number' ? error.version : undefined;
      setConflict({ loaded: base.version, current, patch });
      return;
    }
    setProblem(problemText(error));
  }

  /** After a conflict: the current version into the editor, with the user's change replayed on it or not. */
  async function resolve(reapply: boolean) {
    if (!conflict) return;
    const doc = await refresh();
    if (!doc) return setProblem('The twin could not be read again: try once more.');
    setConflict(undefined);
    setNote(reapply ? `Your change is applied to version ${doc.version} below: check it, then save.` : `Version ${doc.version} is loaded; your change is discarded.`);
    if (!reapply) return start(doc);
    const now = sectionsOf(doc);
    start(doc, { desired: applyMergePatch(now.desired, conflict.patch.desired ?? {}), tags: applyMergePatch(now.tags, conflict.patch.tags ?? {}) });
  }

  const rows = (text: string) => Math.min(18, Math.max(4, text.split('\n').length + 1));
  return (
    <form className="card stack" aria-label="Change the twin" onSubmit={(e) => void save(e)}>
      <h3>Change desired state and tags</h3>
      <p className="muted">
        Editing version {base.version}. Saving sends only what you changed (a JSON merge patch: a member you remove is removed) and is refused if the twin moved on meanwhile.
        {dirty && loaded.version !== base.version && !conflict && <strong> The twin is at version {loaded.version} now: saving will show the conflict.</strong>}
      </p>
      <div className="twin-sections two">
        <label>
          Desired (a JSON object)
          <textarea
            className="json"
            name="desired"
            spellCheck={false}
            rows={rows(desiredText)}
            value={desiredText}
            aria-invalid={errors.desired ? true : undefined}
            aria-describedby={errors.desired ? 'twin-desired-error' : undefined}
            onChange={(e) => {
              setDesiredText(e.target.value);
              setNote(undefined);
            }}
          />
          {errors.desired && (
            <span role="alert" className="error" id="twin-desired-error">
              {errors.desired}
            </span>
          )}
        </label>
        <label>
          Tags (a JSON object)
          <textarea
            className="json"
            name="tags"
            spellCheck={false}
            rows={rows(tagsText)}
            value={tagsText}
            aria-invalid={errors.tags ? true : undefined}
            aria-describedby={errors.tags ? 'twin-tags-error' : undefined}
            onChange={(e) => {
              setTagsText(e.target.value);
              setNote(undefined);
            }}
          />
          {errors.tags && (
            <span role="alert" className="error" id="twin-tags-error">
              {errors.tags}
            </span>
          )}
        </label>
      </div>
      {conflict && (
        <div role="alert" className="conflict" data-testid="twin-conflict">
          <p>
            <strong>Not saved: the twin changed since you loaded version {conflict.loaded}</strong>
            {conflict.current !== undefined ? ` (it is at version ${conflict.current} now)` : ''}. Nothing was overwritten. Your edit is still in the fields above; the change it makes is:
          </p>
          <pre className="json">{pretty(conflict.patch)}</pre>
          <div className="row">
            <button type="button" onClick={() => void resolve(true)}>
              Reload and reapply my change
            </button>
            <button type="button" className="secondary" onClick={() => void resolve(false)}>
              Reload and discard my change
            </button>
          </div>
        </div>
      )}
      <div className="row">
        <button type="submit" disabled={busy || Boolean(conflict)}>
          Save
        </button>
        <button type="button" className="secondary" disabled={!dirty || busy} onClick={() => start(base)}>
          Undo my edit
        </button>
        {note && (
          <span role="status" className="muted" data-testid="twin-note">
            {note}
          </span>
        )}
      </div>
      <ErrorNote error={problem} />
    </form>
  );
}

/**
 * The twin's changes, newest first, a page of versions at a time: the newest page follows the twin
 * as it changes; *Older* and *Newer* move by a page (`from_version`, and the platform's
 * `next_version` says whether newer ones follow).
 */
function TwinHistory({ where, version }: { where: Where; version: number }) {
  const { org } = useOrg();
  const [from, setFrom] = useState<number>(); // undefined: the newest page
  const start = from ?? Math.max(1, version - historyPage + 1);
  const page = useLoad(() => {
    const query = { from_version: start, limit: historyPage };
    return where.name === defaultTwin
      ? api.GET('/orgs/{org}/devices/{id}/twin/history', { params: { path: { org: where.org, id: where.id }, query } })
      : api.GET('/orgs/{org}/devices/{id}/twins/{name}/history', { params: { path: where, query } });
  }, [where.org, where.id, where.name, start, from === undefined ? version : 0]);
  const members = useLoad(() => api.GET('/orgs/{org}/members', { params: { path: { org: org.id }, query: { limit: 100 } } }), [org.id]);
  const emails = new Map((members.data?.members ?? []).map((m) => [m.user_id, m.email]));
  const who = (actor: TwinChange['actor']) => (actor.kind === 'device' ? 'the device' : actor.kind === 'system' ? 'the platform' : `${(actor.id && emails.get(actor.id)) ?? 'a user'}`);
  const changes = [...(page.data?.changes ?? [])].reverse();
  const next = page.data?.next_version;
  return (
    <section aria-label="Twin history">
      <h3>History</h3>
      <ErrorNote error={page.error} />
      {page.data && changes.length === 0 && <p className="muted">No changes kept here (the history is kept for FLEETWIRE_TWIN_HISTORY_RETENTION).</p>}
      {changes.length > 0 && (
        <div className="scroll">
          <table aria-label="Twin changes">
            <thead>
              <tr>
                <th>Version</th>
                <th>When</th>
                <th>Who</th>
                <th>Change</th>
              </tr>
            </thead>
            <tbody>
              {changes.map((c) => (
                <tr key={c.version}>
                  <td>{c.version}</td>
                  <td className="nowrap">{formatTime(c.at)}</td>
                  <td>
                    {who(c.actor)}
                    {c.actor.kind === 'user' && !(c.actor.id && emails.has(c.actor.id)) && c.actor.id && <code title={c.actor.id}> {c.actor.id.slice(0, 8)}…</code>}
                  </td>
                  <td>
                    <code className="payload">{JSON.stringify(c.patch)}</code>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <div className="pager" role="group" aria-label="Pages of the twin history">
        <button type="button" className="secondary" disabled={start <= 1} onClick={() => setFrom(Math.max(1, start - historyPage))}>
          Older
        </button>
        <span data-testid="history-info">{changes.length ? `versions ${changes[changes.length - 1]!.version}–${changes[0]!.version} of ${version}` : `of ${version}`}</span>
        <button type="button" className="secondary" disabled={next === undefined} onClick={() => setFrom(next !== undefined && next + historyPage <= version ? next : undefined)}>
          Newer
        </button>
        {from !== undefined && (
          <button type="button" className="link" onClick={() => setFrom(undefined)}>
            Newest
          </button>
        )}
      </div>
    </section>
  );
}

/** The link to a device's twin tab, as the query page gives it. */
export function TwinLink({ deviceId, name, children }: { deviceId: string; name: string; children: ReactNode }) {
  return <Link href={`/devices/${deviceId}?view=twin${name === defaultTwin ? '' : `&twin=${encodeURIComponent(name)}`}`}>{children}</Link>;
}
