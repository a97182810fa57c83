// A channel: its messages as they arrive, over the WebSocket API (docs/websocket.md): every
// subtopic, as envelopes (`?envelope=true`), with the user's access token (a browser cannot set the
// Authorization header of a WebSocket); its stored messages (channel-history.tsx) and a chart of
// them (channel-chart.tsx). Which of the three is shown is in the address (`?view=`).
import { lazy, Suspense, useEffect, useState, type ReactNode } from 'react';
import { Link, useParams, useSearch } from 'wouter';
import { api, currentToken, renewSession } from '../api/client';
import { useOrg } from '../app';
import { ErrorNote, formatTime, useLoad, useTitle } from '../ui';

// loaded when first shown: the console's first load stays the size it was (see docs/console.md)
const ChannelHistory = lazy(() => import('./channel-history').then((m) => ({ default: m.ChannelHistory })));
const ChannelChart = lazy(() => import('./channel-chart').then((m) => ({ default: m.ChannelChart })));

export interface Envelope {
  id: string;
  subtopic: string;
  publisher: string;
  protocol: string;
  content_type: string;
  received_at: string;
  payload: string; // base64
}

const keep = 200; // messages shown; older ones scroll away
const sessionEnded = 4401; // docs/websocket.md: the login session of the socket's token ended

export function payloadText(base64: string): string {
  const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return `${bytes.length} bytes (binary)`;
  }
}

export type LinkState = 'connecting' | 'live' | 'closed';

/** A channel's messages as they arrive (newest first), over the WebSocket API; also the connect page's. */
export function useLiveMessages(channelId: string): { messages: Envelope[]; state: LinkState; reason: string | undefined } {
  const [messages, setMessages] = useState<Envelope[]>([]);
  const [state, setState] = useState<LinkState>('connecting');
  const [reason, setReason] = useState<string>();
  useEffect(() => {
    let socket: WebSocket | undefined;
    let stopped = false;
    let retried = false; // one renewal and retry per failure: a refusal that stays (a deleted channel) is shown, not looped on
    const open = () => {
      const scheme = window.location.protocol === 'https:' ? 'wss' : 'ws';
      const auth = encodeURIComponent(`Bearer ${currentToken() ?? ''}`);
      socket = new WebSocket(`${scheme}://${window.location.host}/ws/channels/${encodeURIComponent(channelId)}/messages?envelope=true&authorization=${auth}`);
      setState('connecting');
      socket.onopen = () => {
        retried = false;
        setState('live');
        setReason(undefined);
      };
      socket.onmessage = (event) => {
        const envelope = JSON.parse(String(event.data)) as Envelope;
        setMessages((list) => [envelope, ...list].slice(0, keep));
      };
      socket.onclose = (event) => {
        if (stopped) return;
        setState('closed');
        setReason(event.reason || `closed (${event.code})`);
        // the session of the token ended (4401), or the upgrade was refused (1006: e.g. the token had
        // expired): renew, then open again, once
        if (retried || (event.code !== sessionEnded && event.code !== 1006)) return;
        retried = true;
        void renewSession().then((ok) => ok && !stopped && open());
      };
    };
    open();
    return () => {
      stopped = true;
      socket?.close(1000);
    };
  }, [channelId]);
  return { messages, state, reason };
}

type View = 'live' | 'history' | 'chart';
const views: Record<View, string> = { live: 'Live messages', history: 'Stored messages', chart: 'Chart' };

function viewOf(search: string): View {
  const v = new URLSearchParams(search).get('view');
  return v === 'history' || v === 'chart' ? v : 'live';
}

function ViewLink({ view, current, channelId, children }: { view: View; current: View; channelId: string; children: ReactNode }) {
  return (
    <Link href={`/channels/${channelId}${view === 'live' ? '' : `?view=${view}`}`} aria-current={view === current ? 'page' : undefined}>
      {children}
    </Link>
  );
}

export function ChannelPage() {
  const { org } = useOrg();
  const { id } = useParams<{ id: string }>();
  const view = viewOf(useSearch());
  const channel = useLoad(() => api.GET('/orgs/{org}/channels/{id}', { params: { path: { org: org.id, id } } }), [org.id, id]);
  useTitle(channel.data ? `${channel.data.name} · ${org.name}` : undefined);

  return (
    <>
      <p>
        <Link href="/channels">← Channels</Link>
      </p>
      <ErrorNote error={channel.error} />
      {channel.data && (
        <>
          <h2>{channel.data.name}</h2>
          <dl className="facts">
            <dt>Id</dt>
            <dd>
              <code>{channel.data.id}</code>
            </dd>
            <dt>Content type</dt>
            <dd>
              <code>{channel.data.content_type}</code>
            </dd>
            <dt>MQTT topic</dt>
            <dd>
              <code>channels/{channel.data.id}/messages/…</code>
            </dd>
          </dl>
          <nav className="views" aria-label="Channel data">
            {Object.entries(views).map(([v, label]) => (
              <ViewLink key={v} view={v as View} current={view} channelId={id}>
                {label}
              </ViewLink>
            ))}
          </nav>
          {view === 'live' && <LiveMessages channelId={id} />}
          <Suspense fallback={<p className="muted">Loading…</p>}>
            {view === 'history' && <ChannelHistory channel={{ id, name: channel.data.name, contentType: channel.data.content_type }} />}
            {view === 'chart' && <ChannelChart channelId={id} />}
          </Suspense>
        </>
      )}
    </>
  );
}

function LiveMessages({ channelId }: { channelId: string }) {
  const live = useLiveMessages(channelId);
  return (
    <>
      <h3>
        Live messages{' '}
        <span className={`live ${live.state}`} data-testid="live-state">
          {live.state}
        </span>
      </h3>
      {live.state === 'closed' && <ErrorNote error={live.reason} />}
      {live.messages.length === 0 ? (
        <p className="muted">Waiting for messages… they appear here as they are published, on any protocol.</p>
      ) : (
        <table aria-label="Live messages">
          <thead>
            <tr>
              <th>Received</th>
              <th>Subtopic</th>
              <th>Protocol</th>
              <th>Payload</th>
            </tr>
          </thead>
          <tbody>
            {live.messages.map((m) => (
              <tr key={m.id}>
                <td>{formatTime(m.received_at)}</td>
                <td>{m.subtopic || '—'}</td>
                <td>{m.protocol}</td>
                <td>
                  <code className="payload">{payloadText(m.payload)}</code>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </>
  );
}
