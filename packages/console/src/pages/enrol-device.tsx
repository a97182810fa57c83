// Connect a device: with a certificate (a new device enrols with a key of its own, docs/identity.md)
// or with a secret (a device made on the devices page: its own connect page has the commands).
//
// The certificate path, as a sequence of steps: the operator names a serial (a pending registration
// of it is used, else one is made with the chosen channels), the console makes a one-time
// enrolment token covering that serial only and shows it once with the commands that enrol the
// device and publish with its certificate; then it polls the registration until the device has
// enrolled (its device and certificate named at once), and the registration's refused attempts.
import { useEffect, useState, type FormEvent } from 'react';
import { Link, useLocation, useSearch } from 'wouter';
import { api, problemText } from '../api/client';
import type { Endpoints, EnrolmentToken, Registration } from '../api/types';
import { useOrg } from '../app';
import { ErrorNote, formatTime, useDeviceNames, useLoad, useTitle } from '../ui';
import { CommandBlock } from './connect';
import { TokenLifetime } from './enrolment-tokens';
import { Checkboxes } from './channel-group-choices';
import { deviceSdkCommand, listenerCaFile, mqttTlsCommand, opensslCurlCommands, type EnrolCommand } from './enrol-commands';

const pollMs = 2000; // how often the page asks whether the device enrolled, and what was refused

type MadeToken = EnrolmentToken & { token: string };

export function EnrolDevice() {
  const { org } = useOrg();
  const how = new URLSearchParams(useSearch()).get('with') === 'secret' ? 'secret' : 'certificate';
  useTitle(`Connect a device · ${org.name}`);
  return (
    <>
      <h2>Connect a device</h2>
      <nav className="views" aria-label="How the device proves who it is">
        <Link href="/connect" aria-current={how === 'certificate' ? 'page' : undefined}>
          With a certificate
        </Link>
        <Link href="/connect?with=secret" aria-current={how === 'secret' ? 'page' : undefined}>
          With a secret
        </Link>
      </nav>
      {how === 'certificate' ? <WithCertificate /> : <WithSecret />}
    </>
  );
}

/** A device made on the devices page connects with its secret: its own connect page has the commands. */
function WithSecret() {
  const { org } = useOrg();
  const [, navigate] = useLocation();
  const devices = useLoad(() => api.GET('/orgs/{org}/devices', { params: { path: { org: org.id }, query: { limit: 100, sort: 'name' } } }), [org.id]);
  return (
    <>
      <p>
        A device you made on the <Link href="/devices">devices page</Link> has a secret: it sends it as its password. Choose it for the commands, filled in with its id, a channel of its and this platform&apos;s addresses.
      </p>
      <ErrorNote error={devices.error} />
      {devices.data && (
        <form
          className="card inline"
          aria-label="Connect a device with its secret"
          onSubmit={(e) => {
            e.preventDefault();
            const id = String(new FormData(e.currentTarget).get('device') ?? '');
            if (id) navigate(`/devices/${id}/connect`);
          }}
        >
          <label>
            Device
            <select name="device" required defaultValue="">
              <option value="" disabled>
                Choose a device…
              </option>
              {devices.data.devices.map((d) => (
                <option key={d.id} value={d.id}>
                  {d.name}
                </option>
              ))}
            </select>
          </label>
          <button type="submit">Show its commands</button>
        </form>
      )}
    </>
  );
}

/** What the certificate path made: the registration the device enrols against and its token (shown only on this page view). */
interface Made {
  registration: Registration;
  token: MadeToken;
  /** The serial was registered already (pending): its registration is used as it is. */
  reused: boolean;
}

function WithCertificate() {
  const { org, canWriteIdentity } = useOrg();
  const [made, setMade] = useState<Made>();
  const [problem, setProblem] = useState<string>();

  /** The token covers this serial only (a serial with `*` in it would make the pattern wider: the platform's patterns have no escape). */
  const makeToken = async (serial: string, expiresIn: number) => {
    const { data, error } = await api.POST('/orgs/{org}/enrolment-tokens', { params: { path: { org: org.id } }, body: { expires_in: expiresIn, serial_pattern: serial } });
    if (error) throw new Error(problemText(error));
    return data;
  };

  /** The serial's pending registration, or a new one with the channels; refused when the serial is enrolled or blocked. */
  const registrationFor = async (serial: string, model: string, channelIds: string[]): Promise<{ registration: Registration; reused: boolean }> => {
    const found = await api.GET('/orgs/{org}/registrations', { params: { path: { org: org.id }, query: { serial, limit: 1 } } });
    if (found.error) throw new Error(problemText(found.error));
    const existing = found.data.registrations[0];
    if (existing) {
      if (existing.state !== 'pending') throw new Error(`${serial} is ${existing.state}: a token enrols a pending registration only (reset it on the registrations page first).`);
      return { registration: existing, reused: true };
    }
    const { data, error } = await api.POST('/orgs/{org}/registrations', { params: { path: { org: org.id } }, body: { serial, ...(model ? { model } : {}), ...(channelIds.length ? { channel_ids: channelIds } : {}) } });
    if (error) throw new Error(problemText(error));
    return { registration: data, reused: false };
  };

  async function start(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    const fields = new FormData(e.currentTarget);
    const serial = String(fields.get('serial') ?? '').trim();
    const model = String(fields.get('model') ?? '').trim();
    const channelIds = fields.getAll('channel').map(String);
    const expiresIn = Number(fields.get('expires_in'));
    try {
      const { registration, reused } = await registrationFor(serial, model, channelIds);
      setMade({ registration, reused, token: await makeToken(serial, expiresIn) });
      setProblem(undefined);
    } catch (err) {
      setProblem(err instanceof Error ? err.message : String(err));
    }
  }

  async function another() {
    if (!made) return;
    try {
      setMade({ ...made, token: await makeToken(made.registration.serial, Math.round((Date.parse(made.token.expires_at) - Date.parse(made.token.created_at)) / 1000)) });
      setProblem(undefined);
    } catch (err) {
      setProblem(err instanceof Error ? err.message : String(err));
    }
  }

  if (!canWriteIdentity) {
    return <p data-testid="needs-identity-write">A device with a certificate is registered and given a one-time enrolment token here: that takes an owner, admin or operator of {org.name}.</p>;
  }
  return (
    <>
      <p>
        The device makes its own key pair (the key never leaves it) and enrols once with a one-time token: the platform signs its certificate, and it connects with it over mutual TLS. No secret anywhere (docs/identity.md has the details).
      </p>
      {!made && <StartForm onSubmit={(e) => void start(e)} />}
      <ErrorNote error={problem} />
      {made && (
        <>
          <MadeNote made={made} onAnother={() => void another()} onRestart={() => setMade(undefined)} />
          <EnrolCommands registration={made.registration} token={made.token} />
          <EnrolmentWatch key={made.registration.id} registration={made.registration} tokenExpiresAt={made.token.expires_at} />
        </>
      )}
    </>
  );
}

function StartForm({ onSubmit }: { onSubmit(e: FormEvent<HTMLFormElement>): void }) {
  const { org } = useOrg();
  const channels = useLoad(() => api.GET('/orgs/{org}/channels', { params: { path: { org: org.id }, query: { limit: 100, sort: 'name' } } }), [org.id]);
  const pending = useLoad(() => api.GET('/orgs/{org}/registrations', { params: { path: { org: org.id }, query: { state: 'pending', limit: 100 } } }), [org.id]);
  return (
    <form className="card stack" aria-label="Enrol a device with a certificate" onSubmit={onSubmit}>
      <div className="row">
        <label>
          Serial
          <input name="serial" required maxLength={128} pattern="[\x21-\x7e]+" title="Printable characters, no spaces" placeholder="SN-42" list="pending-serials" autoComplete="off" />
        </label>
        <datalist id="pending-serials">
          {pending.data?.registrations.map((r) => (
            <option key={r.id} value={r.serial}>
              {r.model ? `${r.model}, registered` : 'registered'}
            </option>
          ))}
        </datalist>
        <label>
          Model (optional)
          <input name="model" maxLength={128} placeholder="meter" />
        </label>
        <TokenLifetime label="Token valid for" defaultSeconds={60 * 60} />
      </div>
      <Checkboxes name="channel" what="channel" legend="Channels it publishes and subscribes on once enrolled" items={channels.data?.channels} />
      <p className="muted">A serial registered already (and not yet enrolled) keeps its registration and its channels; another is registered now.</p>
      <button type="submit">Make the registration and a token</button>
    </form>
  );
}

function MadeNote({ made, onAnother, onRestart }: { made: Made; onAnother(): void; onRestart(): void }) {
  const [copied, setCopied] = useState(false);
  const { registration: r, token } = made;
  return (
    <section className="secret" aria-label="Enrolment token" data-testid="enrolment-token">
      <p role="status">
        {made.reused ? (
          <>
            <code>{r.serial}</code> was registered already (pending): the device enrols against that registration.
          </>
        ) : (
          <>
            <code>{r.serial}</code> is registered (pending)
            {r.channel_ids.length ? `, with ${r.channel_ids.length} channel${r.channel_ids.length === 1 ? '' : 's'}` : ', with no channel'}.
          </>
        )}{' '}
        <strong>The enrolment token, shown only now:</strong> it enrols <code>{r.serial}</code> once, until <span data-testid="token-expiry">{formatTime(token.expires_at)}</span>. The platform keeps only its hash.
      </p>
      <div className="row">
        <code data-testid="token-value">{token.token}</code>
        <button type="button" onClick={() => void navigator.clipboard.writeText(token.token).then(() => setCopied(true))}>
          {copied ? 'Copied' : 'Copy'}
        </button>
        <button type="button" className="secondary" onClick={onAnother}>
          Make another token
        </button>
        <button type="button" className="secondary" onClick={onRestart}>
          Another device
        </button>
      </div>
    </section>
  );
}

/** Every command the device runs, in order, for its first channel. */
function commandsFor(endpoints: Endpoints, registration: Registration, token: string): EnrolCommand[] {
  const serial = registration.serial;
  const channel = registration.channel_ids[0];
  const tls = channel ? mqttTlsCommand(endpoints.mqtts, channel) : undefined;
  return [deviceSdkCommand(endpoints, token, serial), ...opensslCurlCommands(endpoints.http, token, serial, registration.model || 'device'), ...(tls ? [tls] : [])];
}

function EnrolCommands({ registration, token }: { registration: Registration; token: MadeToken }) {
  const endpoints = useLoad(() => api.GET('/endpoints'), []);
  const e = endpoints.data;
  return (
    <section aria-label="Commands">
      <h3>On the device</h3>
      <ErrorNote error={endpoints.error} />
      {e && (
        <>
          <p className="muted">
            Either the device SDK&apos;s command, or openssl and curl (with jq) by hand. {e.mqtts ? <><code>{listenerCaFile}</code> is the CA that signed the MQTT over TLS listener&apos;s own certificate (<code>FLEETWIRE_MQTT_TLS_CERT</code>).</> : 'MQTT over TLS is off on this platform (FLEETWIRE_MQTT_TLS_CERT): the device enrols, and connects once it is on.'}
          </p>
          {commandsFor(e, registration, token.token).map((c) => (
            <CommandBlock key={c.title} command={c} />
          ))}
          {registration.channel_ids.length === 0 && <p className="muted">The registration joins no channel: connect the device to one on its page once it enrolled, to publish.</p>}
        </>
      )}
    </section>
  );
}

/** Re-runs `reload` every `ms` while `active`. */
function useEvery(ms: number, active: boolean, reload: () => void): void {
  useEffect(() => {
    if (!active) return;
    const timer = setInterval(reload, ms);
    return () => clearInterval(timer);
  }, [ms, active, reload]);
}

/** Waits for the device: the registration polled until it is enrolled, and the attempts refused for it, as they come. */
function EnrolmentWatch({ registration: made, tokenExpiresAt }: { registration: Registration; tokenExpiresAt: string }) {
  const { org } = useOrg();
  const path = { org: org.id, id: made.id };
  const registration = useLoad(() => api.GET('/orgs/{org}/registrations/{id}', { params: { path } }), [made.id]);
  const r = registration.data ?? made;
  const deviceId = r.device_id;
  useEvery(pollMs, !deviceId, registration.reload);
  const refused = useLoad(() => api.GET('/orgs/{org}/identity-events', { params: { path: { org: org.id }, query: { registration_id: made.id, outcome: 'refused', limit: 5 } } }), [made.id]);
  useEvery(pollMs, true, refused.reload);
  const certificate = useLoad(
    () => (deviceId ? api.GET('/orgs/{org}/certificates', { params: { path: { org: org.id }, query: { device_id: deviceId, status: 'active', limit: 1 } } }) : Promise.resolve({ data: undefined })),
    [org.id, deviceId],
  );
  const names = useDeviceNames(org.id, deviceId ? [deviceId] : []);
  const serial = certificate.data?.certificates[0]?.serial;
  return (
    <section aria-label="Enrolment" aria-live="polite">
      <h3>Enrolment</h3>
      {deviceId ? (
        <div className="outcome" data-testid="enrolled">
          <p>
            <strong>Enrolled</strong>
            {r.enrolled_at ? ` ${formatTime(r.enrolled_at)}` : ''}: <Link href={`/devices/${deviceId}`}>{names.get(deviceId) ?? 'its device'}</Link>
            {serial && (
              <>
                , certificate{' '}
                <Link href={`/certificates/${serial}`}>
                  <code className="serial" data-testid="certificate-serial">
                    {serial}
                  </code>
                </Link>
              </>
            )}
            .
          </p>
        </div>
      ) : r.state === 'pending' ? (
        <p className="muted" data-testid="waiting">
          Waiting for <code>{r.serial}</code> to enrol… (the page looks every {pollMs / 1000} s)
        </p>
      ) : (
        <p className="error">
          The registration of <code>{r.serial}</code> is {r.state}.
        </p>
      )}
      {!deviceId && Date.parse(tokenExpiresAt) <= Date.now() && (
        <p className="error" data-testid="token-expired">
          The token expired at {formatTime(tokenExpiresAt)}: make another token for the device.
        </p>
      )}
      <ErrorNote error={registration.error} />
      {refused.data && refused.data.total > 0 && (
        <div className="outcome failed" data-testid="refused-attempts">
          <p>
            {refused.data.total} refused attempt{refused.data.total === 1 ? '' : 's'} for <code>{r.serial}</code>
            {refused.data.total > refused.data.events.length ? ` (the ${refused.data.events.length} newest)` : ''}:
          </p>
          <ul>
            {refused.data.events.map((e) => (
              <li key={e.id}>
                {formatTime(e.created_at)}: <code>{e.code ?? e.action}</code> {e.detail}
                {e.remote ? ` (from ${e.remote})` : ''}
              </li>
            ))}
          </ul>
        </div>
      )}
    </section>
  );
}
