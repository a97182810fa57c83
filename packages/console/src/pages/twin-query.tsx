// The fleet by twin fields (GET /orgs/{org}/twins): conditions one a line, all of which must hold,
// an optional twin name, and the twins found as a table whose columns are the fields the
// conditions name. The query and the page are in the address, so a reload or a link shows the same.
import { type FormEvent } from 'react';
import { Link, useLocation, useSearch } from 'wouter';
import { api } from '../api/client';
import { useOrg } from '../app';
import { ErrorNote, useDeviceNames, useLoad, useTitle } from '../ui';
import { TwinLink } from './device-twin';
import { Pager, pageSize } from './pager';
import { conditionLines, fieldValue, queryFields } from './twin-json';

const maxConditions = 8; // the platform's limit (GET /orgs/{org}/twins)

interface View {
  where: string[];
  name: string;
  offset: number;
}

function readView(search: string): View {
  const q = new URLSearchParams(search);
  return { where: q.getAll('where').filter((w) => w.trim()), name: q.get('name') ?? '', offset: Math.max(0, Number(q.get('offset')) || 0) };
}

function viewSearch(v: View): string {
  const q = new URLSearchParams();
  for (const w of v.where) q.append('where', w);
  if (v.name) q.set('name', v.name);
  if (v.offset) q.set('offset', String(v.offset));
  const s = q.toString();
  return s ? `?${s}` : '';
}

export function TwinQuery() {
  const { org } = useOrg();
  const search = useSearch();
  const [, navigate] = useLocation();
  const view = readView(search);
  const show = (v: View) => navigate(`/devices/twins${viewSearch(v)}`);
  useTitle(`Twins · ${org.name}`);
  const page = useLoad(() => {
    if (view.where.length > maxConditions) return Promise.resolve({ error: `At most ${maxConditions} conditions.` });
    const query = { offset: view.offset, limit: pageSize, ...(view.where.length ? { where: view.where } : {}), ...(view.name ? { name: view.name } : {}) };
    return api.GET('/orgs/{org}/twins', { params: { path: { org: org.id }, query } });
  }, [org.id, search]);
  const twins = page.data?.twins ?? [];
  const names = useDeviceNames(org.id, twins.map((t) => t.device_id));
  const fields = queryFields(view.where);

  function find(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    const form = new FormData(e.currentTarget);
    show({ where: conditionLines(String(form.get('where') ?? '')), name: String(form.get('name') ?? '').trim(), offset: 0 });
  }

  return (
    <>
      <p>
        <Link href="/devices">← Devices</Link>
      </p>
      <h2>Twins</h2>
      <p className="muted">Find devices by their twins: every condition must hold.</p>
      <form role="search" aria-label="Query twins" className="card stack" onSubmit={find} key={search}>
        <div className="twin-sections two">
          <label>
            Conditions (one a line)
            <textarea name="where" className="json" rows={4} spellCheck={false} defaultValue={view.where.join('\n')} placeholder={'reported.firmware.version = 1.4.2\ndesired.mode != reported.mode\nreported.battery < 20'} aria-describedby="twin-query-help" />
          </label>
          <div className="stack">
            <label>
              Twin name (optional)
              <input name="name" defaultValue={view.name} placeholder="default, firmware, …" />
            </label>
            <p className="muted" id="twin-query-help">
              <code>&lt;section&gt;.&lt;path&gt; &lt;op&gt; &lt;value&gt;</code> with section <code>desired</code>, <code>reported</code> or <code>tags</code> and op one of <code>= != &lt; &lt;= &gt; &gt;=</code>, or <code>&lt;section&gt;.&lt;path&gt; exists</code> (or <code>missing</code>). A value is JSON when it reads as
              JSON (<code>14</code>, <code>true</code>, <code>"14"</code>), another field when it names one, text otherwise. At most {maxConditions}.
            </p>
          </div>
        </div>
        <div className="row">
          <button type="submit">Find</button>
          {(view.where.length > 0 || view.name) && (
            <button type="button" className="secondary" onClick={() => show({ where: [], name: '', offset: 0 })}>
              Clear
            </button>
          )}
        </div>
        <ErrorNote error={page.error} />
      </form>
      {page.data && (
        <>
          <div className="scroll">
            <table aria-label="Twins found">
              <thead>
                <tr>
                  <th>Device</th>
                  <th>Twin</th>
                  <th>Version</th>
                  {fields.map((f) => (
                    <th key={f.text}>
                      <code>{f.text}</code>
                    </th>
                  ))}
                </tr>
              </thead>
              <tbody>
                {twins.map((t) => (
                  <tr key={`${t.device_id}/${t.name}`}>
                    <td>
                      <TwinLink deviceId={t.device_id} name={t.name}>
                        {names.get(t.device_id) ?? t.device_id}
                      </TwinLink>
                    </td>
                    <td>{t.name}</td>
                    <td>{t.version}</td>
                    {fields.map((f) => {
                      const value = fieldValue(t[f.section], f.path);
                      return <td key={f.text}>{value === undefined ? <span className="muted">—</span> : <code>{JSON.stringify(value)}</code>}</td>;
                    })}
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          {page.data.total === 0 && <p className="muted">No twin matches.</p>}
          <Pager offset={view.offset} total={page.data.total} onChange={(offset) => show({ ...view, offset })} label="twins" always />
        </>
      )}
    </>
  );
}
