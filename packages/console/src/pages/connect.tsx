// Connect a device: commands to copy for one of its channels, filled in with the device's id, the
// channel's id and the platform's real endpoints (GET /endpoints), then the first message the
// device sends there, as it arrives on the channel's live WebSocket (channel.tsx's hook).
// The platform keeps only a hash of a device secret, so the commands name `$DEVICE_SECRET` until an
// editor rotates the secret here: the new one is filled in for this page view only, in memory.
import { useState } from 'react';
import { Link, useParams, useSearch, useLocation } from 'wouter';
import { api, problemText } from '../api/client';
import type { Endpoints } from '../api/types';
import { useOrg } from '../app';
import { ErrorNote, formatTime, useLoad, useTitle } from '../ui';
import { payloadText, useLiveMessages } from './channel';

const secretVariable = '$DEVICE_SECRET';
const examplePayload = '[{"n":"temp","u":"Cel","v":21.5}]'; // SenML (RFC 8428 §5)
const exampleRecords = "[{ n: 'temp', u: 'Cel', v: 21.5 }]"; // the same, as TypeScript
const exampleSubtopic = 'connect';

/** What a command needs; `secret` is the variable's name until a new secret is known. */
interface Filled {
  deviceId: string;
  channelId: string;
  secret: string | undefined;
  endpoints: Endpoints;
}

/** A shell word for the secret: the variable (expanded by the shell) or the secret itself. */
function shellSecret(secret: string | undefined): string {
  return secret === undefined ? `"${secretVariable}"` : `'${secret}'`;
}

function hostPort(url: string): { host: string; port: string } {
  const u = new URL(url);
  return { host: u.hostname, port: u.port };
}

interface Command {
  title: string;
  language: 'sh' | 'ts';
  text: string;
}

/** The commands for each endpoint the platform has, in the order a newcomer tries them. */
export function commandsFor({ deviceId, channelId, secret, endpoints }: Filled): Command[] {
  const commands: Command[] = [];
  const topic = `channels/${channelId}/messages`;
  if (endpoints.mqtt) {
    const { host, port } = hostPort(endpoints.mqtt);
    const login = `-h ${host} -p ${port} -u '${deviceId}' -P ${shellSecret(secret)}`;
    commands.push({ title: 'Publish with mosquitto_pub (MQTT)', language: 'sh', text: `mosquitto_pub ${login} -q 1 \\\n  -t '${topic}/${exampleSubtopic}' -m '${examplePayload}'` });
    commands.push({ title: 'Subscribe with mosquitto_sub (MQTT)', language: 'sh', text: `mosquitto_sub ${login} -q 1 -v \\\n  -t '${topic}/#'` });
  }
  commands.push({
    title: 'Publish with curl (HTTP)',
    language: 'sh',
    text: `curl -s -w '%{http_code}\\n' '${endpoints.http}/${topic}/${exampleSubtopic}' \\\n  -H "authorization: Device ${secret ?? secretVariable}" -H 'content-type: application/senml+json' \\\n  -d '${examplePayload}'`,
  });
  if (endpoints.coap) {
    commands.push({
      title: 'Publish with coap-client (CoAP)',
      language: 'sh',
      text: `coap-client-notls -m post -t 110 -e '${examplePayload}' \\\n  "${endpoints.coap}/${topic}/${exampleSubtopic}?auth=${secret === undefined ? secretVariable : encodeURIComponent(secret)}"`,
    });
  }
  const url = endpoints.mqtt ?? endpoints.mqtts ?? endpoints.mqtt_ws;
  if (url) {
    commands.push({
      title: 'The device SDK (TypeScript, @fleetwire/device)',
      language: 'ts',
      text: [
        "import { connectDevice } from '@fleetwire/device';",
        '',
        `const device = await connectDevice({ url: '${url}', deviceId: '${deviceId}', secret: ${secret === undefined ? 'process.env.DEVICE_SECRET!' : `'${secret}'`} });`,
        `await device.publishSenml('${channelId}', ${exampleRecords}, { subtopic: '${exampleSubtopic}' });`,
        'await device.close();',
      ].join('\n'),
    });
  }
  return commands;
}

export function ConnectPage() {
  const { org, canEdit, canReadIdentity } = useOrg();
  const { id } = useParams<{ id: string }>();
  const [, navigate] = useLocation();
  const path = { org: org.id, id };
  const device = useLoad(() => api.GET('/orgs/{org}/devices/{id}', { params: { path } }), [org.id, id]);
  const channels = useLoad(() => api.GET('/orgs/{org}/devices/{id}/channels', { params: { path, query: { limit: 100 } } }), [org.id, id]);
  const endpoints = useLoad(() => api.GET('/endpoints'), []);
  const chosen = new URLSearchParams(useSearch()).get('channel');
  const [secret, setSecret] = useState<string>();
  const [problem, setProblem] = useState<string>();
  useTitle(device.data ? `Connect ${device.data.name} · ${org.name}` : undefined);

  const list = channels.data?.channels ?? [];
  const channel = list.find((c) => c.channel_id === chosen) ?? list[0];

  async function rotate() {
    if (!window.confirm('Rotate the secret? The old secret stops working at once and the device is disconnected; the new one is filled into these commands.')) return;
    const { data, error } = await api.POST('/orgs/{org}/devices/{id}/secret', { params: { path } });
    setProblem(error ? problemText(error) : undefined);
    if (data) setSecret(data.secret);
  }

  return (
    <>
      <p>
        <Link href={`/devices/${id}`}>← {device.data?.name ?? 'Device'}</Link>
      </p>
      <ErrorNote error={device.error ?? channels.error ?? endpoints.error} />
      {device.data && (
        <>
          <h2>Connect {device.data.name}</h2>
          {canReadIdentity && (
            <p className="muted">
              With its secret, below. A new device can prove who it is with a key of its own instead: <Link href="/connect">enrol a device with a certificate</Link>.
            </p>
          )}
          {channels.data && list.length === 0 && (
            <p data-testid="no-channels">
              The device is not connected to any channel, so it can send nothing yet. <Link href={`/devices/${id}`}>Connect it to a channel on its page</Link>.
            </p>
          )}
          {channel && (
            <>
              <label className="stack">
                Channel
                <select value={channel.channel_id} onChange={(e) => navigate(`/devices/${id}/connect?channel=${encodeURIComponent(e.target.value)}`, { replace: true })}>
                  {list.map((c) => (
                    <option key={c.channel_id} value={c.channel_id}>
                      {c.name} ({c.types.join(', ')})
                    </option>
                  ))}
                </select>
              </label>
              <SecretNote secret={secret} canEdit={canEdit} onRotate={() => void rotate()} />
              <ErrorNote error={problem} />
              {endpoints.data && <Commands commands={commandsFor({ deviceId: id, channelId: channel.channel_id, secret, endpoints: endpoints.data })} />}
              <FirstMessage key={channel.channel_id} channelId={channel.channel_id} deviceId={id} />
            </>
          )}
        </>
      )}
    </>
  );
}

function SecretNote({ secret, canEdit, onRotate }: { secret: string | undefined; canEdit: boolean; onRotate(): void }) {
  if (secret !== undefined) {
    return (
      <p className="secret" role="status" data-testid="secret-filled">
        The new secret is filled into the commands below, for this page only: copy it to the device now. Leaving or reloading the page forgets it.
      </p>
    );
  }
  return (
    <div className="secret">
      <p>
        The platform keeps only a hash of the device secret and cannot show it: the commands read it from <code>{secretVariable}</code> (<code>export DEVICE_SECRET=…</code>).
      </p>
      {canEdit && (
        <button type="button" className="danger" onClick={onRotate}>
          Rotate secret and fill it in
        </button>
      )}
    </div>
  );
}

function Commands({ commands }: { commands: Command[] }) {
  return (
    <section aria-label="Commands">
      <h3>Commands</h3>
      {commands.map((c) => (
        <CommandBlock key={c.title} command={c} />
      ))}
    </section>
  );
}

export function CommandBlock({ command }: { command: { title: string; text: string } }) {
  const [copied, setCopied] = useState(false);
  return (
    <figure className="command">
      <figcaption className="row">
        <strong>{command.title}</strong>
        <button type="button" className="secondary" aria-label={`${copied ? 'Copied' : 'Copy'}: ${command.title}`} onClick={() => void navigator.clipboard.writeText(command.text).then(() => setCopied(true))}>
          {copied ? 'Copied' : 'Copy'}
        </button>
      </figcaption>
      <pre className="command" data-testid="command">
        <code>{command.text}</code>
      </pre>
    </figure>
  );
}

/** The first message the device publishes on the channel after the page opened. */
function FirstMessage({ channelId, deviceId }: { channelId: string; deviceId: string }) {
  const live = useLiveMessages(channelId);
  const first = live.messages.findLast((m) => m.publisher === deviceId);
  return (
    <section aria-label="First message" aria-live="polite">
      <h3>First message</h3>
      {live.state === 'closed' && <p className="error">The live connection closed: {live.reason}</p>}
      {first ? (
        <div className="card" data-testid="first-message">
          <p>
            Received {formatTime(first.received_at)} over {first.protocol.toUpperCase()}
            {first.subtopic ? ` on ${first.subtopic}` : ''}. <Link href={`/channels/${channelId}`}>See the channel</Link>.
          </p>
          <pre className="command">
            <code>{payloadText(first.payload)}</code>
          </pre>
        </div>
      ) : (
        <p className="muted" data-testid="waiting">
          {live.state === 'live' ? 'Waiting for the first message…' : 'Connecting…'}
        </p>
      )}
    </section>
  );
}
