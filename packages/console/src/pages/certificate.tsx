// One device certificate (docs/identity.md): its facts, the certificate it renewed (`replaces`) and
// the one that renewed it, why it was revoked in words, and its PEM to copy.
import { useState } from 'react';
import { Link, useParams } from 'wouter';
import { api } from '../api/client';
import { useOrg } from '../app';
import { ErrorNote, formatTime, useDeviceNames, useLoad, useTitle } from '../ui';
import { NotAfter } from './device-certificates';
import { Revoked } from './certificates';
import { useRenewedBy } from './renewals';

export function CertificatePage() {
  const { org } = useOrg();
  const { serial } = useParams<{ serial: string }>();
  const certificate = useLoad(() => api.GET('/orgs/{org}/certificates/{serial}', { params: { path: { org: org.id, serial } } }), [org.id, serial]);
  const c = certificate.data;
  // the device's others: the one this certificate renewed is named by it, the one that renewed it is found among them
  const siblings = useLoad(
    () => (c ? api.GET('/orgs/{org}/certificates', { params: { path: { org: org.id }, query: { device_id: c.device_id, limit: 100 } } }) : Promise.resolve({ data: undefined })),
    [org.id, c?.device_id],
  );
  const renewedBy = useRenewedBy(org.id, siblings.data?.certificates ?? []).get(serial);
  const names = useDeviceNames(org.id, c ? [c.device_id] : []);
  const [now] = useState(() => Date.now());
  const [copied, setCopied] = useState(false);
  useTitle(`Certificate ${serial.slice(0, 12)} · ${org.name}`);

  return (
    <>
      <p>
        <Link href="/certificates">← Certificates</Link>
      </p>
      <h2>
        Certificate <code className="serial">{serial.slice(0, 12)}…</code>
      </h2>
      <ErrorNote error={certificate.error} />
      {c && (
        <dl className="facts" aria-label="Certificate">
          <dt>Serial</dt>
          <dd>
            <code className="wrap">{c.serial}</code>
          </dd>
          <dt>Device</dt>
          <dd>
            <Link href={`/devices/${c.device_id}`}>{names.get(c.device_id) ?? 'its device'}</Link>
          </dd>
          <dt>Status</dt>
          <dd>
            <span className={`status ${c.status}`} data-testid="certificate-status">
              {c.status}
            </span>
            {c.revoked_at && (
              <>
                {' '}
                <Revoked certificate={c} renewedBy={renewedBy} />
              </>
            )}
          </dd>
          <dt>Valid from</dt>
          <dd>{formatTime(c.not_before)}</dd>
          <dt>Not after</dt>
          <dd>
            <NotAfter certificate={c} now={now} />
          </dd>
          <dt>Renews</dt>
          <dd data-testid="replaces">
            {c.replaces ? (
              <>
                <Link href={`/certificates/${c.replaces}`}>
                  <code className="wrap">{c.replaces}</code>
                </Link>{' '}
                <span className="muted">(active until the device first connects with this one, then revoked: replaced by a renewal)</span>
              </>
            ) : (
              <span className="muted">none: issued at an enrolment</span>
            )}
          </dd>
          <dt>Renewed by</dt>
          <dd data-testid="renewed-by">
            {renewedBy ? (
              <Link href={`/certificates/${renewedBy}`}>
                <code className="wrap">{renewedBy}</code>
              </Link>
            ) : (
              <span className="muted">not renewed</span>
            )}
          </dd>
          <dt>Fingerprint (SHA-256)</dt>
          <dd>
            <code className="wrap">{c.fingerprint}</code>
          </dd>
          <dt>Key (SHA-256)</dt>
          <dd>
            <code className="wrap">{c.key_fingerprint}</code>
          </dd>
        </dl>
      )}
      {c && (
        <details>
          <summary>The certificate (PEM)</summary>
          <button type="button" className="secondary" onClick={() => void navigator.clipboard.writeText(c.certificate).then(() => setCopied(true))}>
            {copied ? 'Copied' : 'Copy the PEM'}
          </button>
          <pre className="command">
            <code>{c.certificate}</code>
          </pre>
        </details>
      )}
    </>
  );
}
