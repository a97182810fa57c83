// The organization's device certificates (docs/identity.md): the inventory, paged, filtered by
// status, by device and to those expiring within 30 days (in the address); each with its device,
// when it expires (marked when that is within 30 days, and more so within 7), and, revoked, when
// and why. Revoking one, with a reason and after a confirmation, needs `identity:write`: it ends
// the device's sessions that use it at once. A device's page lists its own (device-certificates.tsx).
import { useState, type FormEvent } from 'react';
import { Link, useLocation, useSearch } from 'wouter';
import { api, problemText } from '../api/client';
import type { Certificate, RevocationReason } from '../api/types';
import { useOrg } from '../app';
import { ErrorNote, formatTime, useDeviceNames, useLoad, useTitle, searchOf } from '../ui';
import { Pager, pageSize } from './pager';
import { NotAfter } from './device-certificates';
import { dayMs, soonDays } from './expiry';
import { revocationWords } from './identity-words';
import { useRenewedBy } from './renewals';

const reasons: [RevocationReason, string][] = [
  ['unspecified', 'Unspecified'],
  ['keyCompromise', 'Key compromise'],
  ['superseded', 'Superseded'],
  ['cessationOfOperation', 'Cessation of operation'],
  ['certificateHold', 'Certificate hold'],
];

interface View {
  status: 'active' | 'revoked' | '';
  expiring: boolean;
  device: string;
  offset: number;
}

function readView(search: string): View {
  const q = new URLSearchParams(search);
  const status = q.get('status');
  return { status: status === 'active' || status === 'revoked' ? status : '', expiring: q.get('expiring') === '30d', device: q.get('device') ?? '', offset: Math.max(0, Number(q.get('offset')) || 0) };
}

function viewSearch(v: View): string {
  return searchOf({ status: v.status, expiring: v.expiring ? '30d' : undefined, device: v.device, offset: v.offset });
}

export function Certificates() {
  const { org, canWriteIdentity } = useOrg();
  const search = useSearch();
  const [, navigate] = useLocation();
  const view = readView(search);
  const show = (change: Partial<View>) => navigate(`/certificates${viewSearch({ ...view, offset: 0, ...change })}`);
  // the expiry filter's moment is fixed for the page view, so that reloads after a change ask the same
  const [now] = useState(() => Date.now());
  const page = useLoad(() => {
    const query = {
      offset: view.offset,
      limit: pageSize,
      ...(view.status ? { status: view.status } : {}),
      ...(view.expiring ? { expiring_before: new Date(now + soonDays * dayMs).toISOString() } : {}),
      ...(view.device ? { device_id: view.device } : {}),
    };
    return api.GET('/orgs/{org}/certificates', { params: { path: { org: org.id }, query } });
  }, [org.id, search]);
  const names = useDeviceNames(org.id, page.data?.certificates.map((c) => c.device_id) ?? []);
  const renewedBy = useRenewedBy(org.id, page.data?.certificates ?? []);
  const [revoking, setRevoking] = useState<string>();
  const [problem, setProblem] = useState<string>();
  const [done, setDone] = useState<string>();
  useTitle(`Certificates · ${org.name}`);

  function applyFilters(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    const fields = new FormData(e.currentTarget);
    show({ status: String(fields.get('status') ?? '') as View['status'], expiring: fields.get('expiring') === 'on' });
  }

  async function revoke(serial: string, reason: RevocationReason) {
    if (!window.confirm(`Revoke certificate ${serial}? The device's sessions that use it end at once and it cannot connect with it again.`)) return;
    const { error } = await api.POST('/orgs/{org}/certificates/{serial}/revoke', { params: { path: { org: org.id, serial } }, body: { reason } });
    if (error) {
      setDone(undefined);
      return setProblem(problemText(error));
    }
    setProblem(undefined);
    setDone(`Certificate ${serial} is revoked.`);
    setRevoking(undefined);
    page.reload();
  }

  const total = page.data?.total ?? 0;
  const filtered = Boolean(view.status || view.expiring || view.device);
  return (
    <>
      <h2>Certificates</h2>
      <p className="muted">
        The certificates devices enrolled for. The organization&apos;s revocation list is public at <code>/pki/orgs/{org.id}/crl</code>.
      </p>
      <form role="search" aria-label="Filter certificates" className="toolbar filters" onSubmit={applyFilters} key={search}>
        <label>
          Status
          <select name="status" defaultValue={view.status}>
            <option value="">Any</option>
            <option value="active">Active</option>
            <option value="revoked">Revoked</option>
          </select>
        </label>
        <label className="check">
          <input type="checkbox" name="expiring" defaultChecked={view.expiring} /> Expiring within {soonDays} days
        </label>
        <button type="submit" className="secondary">
          Filter
        </button>
        {filtered && (
          <button type="button" className="secondary" onClick={() => show({ status: '', expiring: false, device: '' })}>
            Show all certificates
          </button>
        )}
      </form>
      {view.device && (
        <p>
          Of the device <Link href={`/devices/${view.device}`}>{names.get(view.device) ?? view.device}</Link> only.
        </p>
      )}
      <ErrorNote error={page.error ?? problem} />
      {done && (
        <p role="status" className="outcome">
          {done}
        </p>
      )}
      {page.data && (
        <>
          <div className="scroll">
            <table aria-label="Certificates" className="fleet">
              <thead>
                <tr>
                  <th>Serial</th>
                  <th>Device</th>
                  <th>Status</th>
                  <th>Not after</th>
                  <th className="optional">Revoked</th>
                  {canWriteIdentity && (
                    <th>
                      <span className="visually-hidden">Actions</span>
                    </th>
                  )}
                </tr>
              </thead>
              <tbody>
                {page.data.certificates.map((c) => (
                  <tr key={c.serial}>
                    <td>
                      <SerialLink serial={c.serial} />
                      {c.replaces && <Renews serial={c.replaces} />}
                    </td>
                    <td>
                      <Link href={`/devices/${c.device_id}`}>{names.get(c.device_id) ?? 'device'}</Link>
                    </td>
                    <td>
                      <span className={`status ${c.status}`} data-testid="certificate-status">
                        {c.status}
                      </span>
                    </td>
                    <td>
                      <NotAfter certificate={c} now={now} />
                    </td>
                    <td className="optional">{c.revoked_at ? <Revoked certificate={c} renewedBy={renewedBy.get(c.serial)} /> : '—'}</td>
                    {canWriteIdentity && (
                      <td>
                        {c.status === 'active' && (
                          <button type="button" className="danger" aria-expanded={revoking === c.serial} aria-label={`Revoke certificate ${c.serial}`} onClick={() => setRevoking(revoking === c.serial ? undefined : c.serial)}>
                            Revoke…
                          </button>
                        )}
                      </td>
                    )}
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          {revoking && <RevokeForm serial={revoking} onRevoke={(reason) => void revoke(revoking, reason)} onCancel={() => setRevoking(undefined)} />}
          {total === 0 && <p className="muted">{filtered ? 'No certificate matches the filter.' : 'No certificates yet: none of the devices has enrolled.'}</p>}
          <Pager offset={view.offset} total={total} onChange={(offset) => show({ offset })} label="certificates" always />
        </>
      )}
    </>
  );
}

/** A link to a certificate's page, named by the whole serial; the stylesheet cuts it short for the eye (styles.css `code.serial.short`). */
export function SerialLink({ serial }: { serial: string }) {
  return (
    <Link href={`/certificates/${serial}`}>
      <code className="serial short" title={serial}>
        {serial}
      </code>
    </Link>
  );
}

/** A renewal's link to the certificate it renewed. */
export function Renews({ serial }: { serial: string }) {
  return (
    <div className="muted renews" data-testid="renews">
      renews <SerialLink serial={serial} />
    </div>
  );
}

/** When and why a certificate was revoked, in words; superseded by a known renewal, linked to it. */
export function Revoked({ certificate: c, renewedBy }: { certificate: Certificate; renewedBy: string | undefined }) {
  const why = revocationWords(c.revocation_reason, renewedBy);
  return (
    <span data-testid="revoked">
      {c.revoked_at && formatTime(c.revoked_at)} ({renewedBy && c.revocation_reason === 'superseded' ? <Link href={`/certificates/${renewedBy}`}>{why}</Link> : why})
    </span>
  );
}

function RevokeForm({ serial, onRevoke, onCancel }: { serial: string; onRevoke(reason: RevocationReason): void; onCancel(): void }) {
  return (
    <form
      className="card inline"
      aria-label="Revoke a certificate"
      onSubmit={(e) => {
        e.preventDefault();
        onRevoke(String(new FormData(e.currentTarget).get('reason')) as RevocationReason);
      }}
    >
      <p className="grow">
        Revoke <code className="serial">{serial}</code>
      </p>
      <label>
        Reason
        <select name="reason" defaultValue="unspecified">
          {reasons.map(([value, label]) => (
            <option key={value} value={value}>
              {label}
            </option>
          ))}
        </select>
      </label>
      <button type="submit" className="danger">
        Revoke
      </button>
      <button type="button" className="secondary" onClick={onCancel}>
        Cancel
      </button>
    </form>
  );
}
