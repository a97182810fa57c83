// The organization's dead letters: messages the writer could not store (docs/storage.md), oldest
// first, a page at a time, with why; a payload viewed as text or hex; deleted one at a time or all
// at once. Reading and deleting them are an owner's and an admin's (`dead-letters:read` and
// `dead-letters:write`, docs/permissions.md): anyone else is told so and shown no control.
import { useState } from 'react';
import { Link } from 'wouter';
import { api, problemText } from '../api/client';
import { useOrg } from '../app';
import { ErrorNote, formatTime, useLoad, useTitle } from '../ui';
import { Pager, pageSize } from './pager';
import { bytesOf, hexOf, textOf } from './messages';


export function DeadLetters() {
  const { org, canAdminister } = useOrg();
  useTitle(`Dead letters · ${org.name}`);
  return (
    <>
      <h2>Dead letters</h2>
      {canAdminister ? <DeadLetterList /> : <p className="muted">Only the organization&apos;s owners and admins see the messages that could not be stored.</p>}
    </>
  );
}

function DeadLetterList() {
  const { org } = useOrg();
  const [offset, setOffset] = useState(0);
  const [open, setOpen] = useState<string>();
  const [problem, setProblem] = useState<string>();
  const [done, setDone] = useState<string>();
  const list = useLoad(() => api.GET('/orgs/{org}/dead-letters', { params: { path: { org: org.id }, query: { offset, limit: pageSize } } }), [org.id, offset]);
  // channel names for the ids (the organization's first 100 channels; an id without one is shown as is)
  const channels = useLoad(() => api.GET('/orgs/{org}/channels', { params: { path: { org: org.id }, query: { limit: 100 } } }), [org.id]);
  const channelName = new Map(channels.data?.channels.map((c) => [c.id, c.name]));

  async function remove(id: string) {
    const { error } = await api.DELETE('/orgs/{org}/dead-letters/{id}', { params: { path: { org: org.id, id } } });
    if (error) return setProblem(problemText(error));
    setProblem(undefined);
    setDone('The dead letter was deleted.');
    if (open === id) setOpen(undefined);
    // the last one of a page that is not the first: back one page
    if (list.data && list.data.dead_letters.length === 1 && offset > 0) setOffset(Math.max(0, offset - pageSize));
    else list.reload();
  }

  async function removeAll() {
    if (!window.confirm(`Delete all ${list.data?.total ?? ''} dead letters of ${org.name}? Their payloads are lost.`)) return;
    const { data, error } = await api.DELETE('/orgs/{org}/dead-letters', { params: { path: { org: org.id } } });
    if (error) return setProblem(problemText(error));
    setProblem(undefined);
    setDone(`${data.deleted} dead letters were deleted.`);
    setOpen(undefined);
    setOffset(0);
    list.reload();
  }

  const total = list.data?.total ?? 0;
  return (
    <>
      <p className="muted">Messages the platform received but could not store, oldest first, with the reason. Once handled (for instance published again after a fix), delete them.</p>
      <ErrorNote error={list.error ?? problem} />
      {done && (
        <p className="outcome" role="status">
          {done}
        </p>
      )}
      {/* the rows wait for the channels' names, so that they do not show ids first and names a moment later */}
      {list.data && (channels.data || channels.error) && (
        <>
          {total > 0 && (
            <div className="toolbar">
              <button type="button" className="danger" onClick={() => void removeAll()}>
                Delete all {total}
              </button>
            </div>
          )}
          <div className="scroll">
            <table aria-label="Dead letters" className="fleet">
              <thead>
                <tr>
                  <th>Received</th>
                  <th>Channel</th>
                  <th>Reason</th>
                  <th>Size</th>
                  <th className="optional">Publisher</th>
                  <th>
                    <span className="visually-hidden">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {list.data.dead_letters.map((d) => (
                  <tr key={d.id}>
                    <td>{formatTime(d.received_at)}</td>
                    <td>
                      <Link href={`/channels/${d.channel}`}>{channelName.get(d.channel) ?? d.channel}</Link>
                      {d.subtopic && <span className="muted"> / {d.subtopic}</span>}
                    </td>
                    <td className="reason">{d.error}</td>
                    <td className="nowrap">{d.size} bytes</td>
                    <td className="optional">
                      <code>{d.publisher}</code> <span className="muted">({d.protocol})</span>
                    </td>
                    <td>
                      <div className="row">
                        <button type="button" className="secondary" aria-expanded={open === d.id} onClick={() => setOpen(open === d.id ? undefined : d.id)} aria-label={`Payload of the message received ${formatTime(d.received_at)}`}>
                          Payload
                        </button>
                        <button type="button" className="danger" onClick={() => void remove(d.id)} aria-label={`Delete the message received ${formatTime(d.received_at)}`}>
                          Delete
                        </button>
                      </div>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          {open && <DeadLetterPayload id={open} />}
          {total === 0 && <p className="muted">No dead letters: every message received was stored.</p>}
          <Pager offset={offset} total={total} onChange={setOffset} label="dead letters" always testId="dead-letters-page-info" />
        </>
      )}
    </>
  );
}

/** One dead letter's payload: as text when it is UTF-8 text, else (or when asked) in hex. */
function DeadLetterPayload({ id }: { id: string }) {
  const { org } = useOrg();
  const letter = useLoad(() => api.GET('/orgs/{org}/dead-letters/{id}', { params: { path: { org: org.id, id } } }), [org.id, id]);
  const [hex, setHex] = useState(false);
  if (letter.error) return <ErrorNote error={letter.error} />;
  if (!letter.data) return <p className="muted">Loading…</p>;
  const bytes = bytesOf(letter.data.payload);
  const text = textOf(bytes);
  const asHex = hex || text === undefined;
  return (
    <section className="card" aria-label="Payload" data-testid="dead-letter-payload">
      <h3>
        Payload of the message received {formatTime(letter.data.received_at)} <span className="muted">({letter.data.content_type || 'no content type'}, {bytes.length} bytes)</span>
      </h3>
      {text !== undefined && (
        <label className="check">
          <input type="checkbox" checked={hex} onChange={(e) => setHex(e.target.checked)} /> Show in hex
        </label>
      )}
      {text === undefined && <p className="muted">Not UTF-8 text: shown in hex.</p>}
      <pre className="payload" data-testid="dead-letter-bytes">
        {asHex ? hexOf(bytes) : text}
      </pre>
    </section>
  );
}
