// A device's certificates, the short list its page shows (here, not in the lazily loaded
// inventory, so that the device page does not pull the inventory in), and when a certificate
// expires as both show it: the date, "expires in N days", and a mark within 30 days (◷) and within
// 7 (⚠), in text as well as colour (expiry.ts says which).
import { useState } from 'react';
import { Link } from 'wouter';
import { api } from '../api/client';
import type { Certificate } from '../api/types';
import { useOrg } from '../app';
import { ErrorNote, formatTime, useLoad } from '../ui';
import { pageSize } from './pager';
import { expiry } from './expiry';

export function NotAfter({ certificate, now }: { certificate: Certificate; now: number }) {
  return (
    <>
      {formatTime(certificate.not_after)}
      {certificate.status === 'active' && (
        <>
          {' '}
          <ExpiryMark notAfter={certificate.not_after} now={now} />
        </>
      )}
    </>
  );
}

/** "expires in N days", marked ◷ within 30 days and ⚠ within 7 or once expired (a certificate's, a manufacturer CA's). */
export function ExpiryMark({ notAfter, now }: { notAfter: string; now: number }) {
  const e = expiry(notAfter, now);
  return (
    <span className={`expiry ${e.level}`} data-testid="expiry">
      {e.level === 'urgent' || e.level === 'expired' ? '⚠ ' : e.level === 'soon' ? '◷ ' : ''}
      {e.text}
    </span>
  );
}

/** A device's certificates, for its page: newest first, the first 20, with a link to the inventory filtered to it. */
export function DeviceCertificates({ deviceId }: { deviceId: string }) {
  const { org, canReadIdentity } = useOrg();
  const list = useLoad(
    () => (canReadIdentity ? api.GET('/orgs/{org}/certificates', { params: { path: { org: org.id }, query: { device_id: deviceId, limit: pageSize } } }) : Promise.resolve({ data: undefined })),
    [org.id, deviceId, canReadIdentity],
  );
  const [now] = useState(() => Date.now());
  if (!canReadIdentity) return null;
  const certificates = list.data?.certificates ?? [];
  return (
    <section aria-label="Certificates">
      <h3>Certificates</h3>
      <ErrorNote error={list.error} />
      {list.data && certificates.length === 0 && <p className="muted">No certificate: the device has not enrolled (it connects with its secret).</p>}
      {certificates.length > 0 && (
        <table aria-label="Device certificates">
          <thead>
            <tr>
              <th>Serial</th>
              <th>Status</th>
              <th>Not after</th>
            </tr>
          </thead>
          <tbody>
            {certificates.map((c) => (
              <tr key={c.serial}>
                <td>
                  <code className="serial" title={c.serial}>
                    {c.serial.slice(0, 12)}…
                  </code>
                </td>
                <td>
                  <span className={`status ${c.status}`}>{c.status}</span>
                </td>
                <td>
                  <NotAfter certificate={c} now={now} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {list.data && (
        <p>
          <Link href={`/certificates?device=${deviceId}`}>{list.data.total > certificates.length ? `All ${list.data.total} in the certificates inventory` : 'In the certificates inventory'}</Link>
        </p>
      )}
    </section>
  );
}
