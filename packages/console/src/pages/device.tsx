import { useState } from 'react';
import { Link, useParams } from 'wouter';
import { api, problemText } from '../api/client';
import { useOrg } from '../app';
import { ErrorNote, SecretOnce, formatTime, useLoad, useTitle } from '../ui';

export function DevicePage() {
  const { org, canEdit } = useOrg();
  const { id } = useParams<{ id: string }>();
  const path = { org: org.id, id };
  const device = useLoad(() => api.GET('/orgs/{org}/devices/{id}', { params: { path } }), [org.id, id]);
  const [secret, setSecret] = useState<string>();
  const [error, setError] = useState<string>();
  useTitle(device.data ? `${device.data.name} · ${org.name}` : undefined);

  async function setStatus(enable: boolean) {
    const { error: problem } = enable ? await api.POST('/orgs/{org}/devices/{id}/enable', { params: { path } }) : await api.POST('/orgs/{org}/devices/{id}/disable', { params: { path } });
    setError(problem ? problemText(problem) : undefined);
    device.reload();
  }

  async function rotate() {
    if (!window.confirm('Rotate the secret? The current one stops working at once, and the device is disconnected.')) return;
    const { data, error: problem } = await api.POST('/orgs/{org}/devices/{id}/secret', { params: { path } });
    if (problem) return setError(problemText(problem));
    setError(undefined);
    setSecret(data.secret);
  }

  const d = device.data;
  return (
    <>
      <p>
        <Link href="/devices">← Devices</Link>
      </p>
      <ErrorNote error={device.error} />
      {d && (
        <>
          <h2>{d.name}</h2>
          <dl className="facts">
            <dt>Id</dt>
            <dd>
              <code>{d.id}</code>
            </dd>
            <dt>Status</dt>
            <dd>
              <span className={`status ${d.status}`} data-testid="device-status">
                {d.status}
              </span>
            </dd>
            <dt>Tags</dt>
            <dd>{d.tags.length ? d.tags.join(', ') : '—'}</dd>
            <dt>Metadata</dt>
            <dd>
              <code>{JSON.stringify(d.metadata)}</code>
            </dd>
            <dt>Created</dt>
            <dd>{formatTime(d.created_at)}</dd>
          </dl>
          {canEdit && (
            <div className="row">
              {d.status === 'enabled' ? (
                <button type="button" className="secondary" onClick={() => void setStatus(false)}>
                  Disable
                </button>
              ) : (
                <button type="button" onClick={() => void setStatus(true)}>
                  Enable
                </button>
              )}
              <button type="button" className="danger" onClick={() => void rotate()}>
                Rotate secret
              </button>
            </div>
          )}
          <ErrorNote error={error} />
          {secret && <SecretOnce secret={secret} onDone={() => setSecret(undefined)} />}
        </>
      )}
    </>
  );
}
