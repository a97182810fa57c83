// test-database: none
// The session journal: what reaches the store, and in what order, for changes recorded within one batch.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { SessionJournal, type SessionChange, type SessionRecord, type SessionStore } from './store.js';

/** A store that keeps the batches it is given. */
function batchLog(): SessionStore & { batches: SessionChange[][] } {
  const batches: SessionChange[][] = [];
  return {
    batches,
    load: () => Promise.resolve(undefined),
    holder: () => Promise.resolve(undefined),
    loadNode: () => Promise.resolve([]),
    apply: (changes) => {
      batches.push([...changes]);
      return Promise.resolve();
    },
    purgeExpired: () => Promise.resolve(0),
  };
}

function row(clientId: string, incomingQos2: number[]): SessionChange {
  const record: SessionRecord = { clientId, nodeId: 'n', identity: { kind: 'anonymous' }, protocolVersion: 5, expirySeconds: 60, disconnectedAt: undefined, incomingQos2 };
  return { op: 'session', record };
}

const summary = (c: SessionChange) => (c.op === 'session' ? `session ${c.record.clientId} ${JSON.stringify(c.record.incomingQos2)}` : `${c.op} ${'clientId' in c ? c.clientId : ''}`);

/** What reaches the store when each list of changes is recorded and then flushed: one list per batch. */
async function written(...flushes: SessionChange[][]): Promise<string[][]> {
  const store = batchLog();
  const journal = new SessionJournal(store, (e) => assert.fail(String(e)));
  for (const changes of flushes) {
    for (const c of changes) journal.record(c);
    await journal.flush();
  }
  return store.batches.map((b) => b.map(summary));
}

describe('session journal', () => {
  test('a batch writes a session row once, in its first place, with its newest state', async () => {
    // an inbound QoS 2 message: its packet id is added at PUBLISH and removed at PUBREL [MQTT-4.3.3-9]
    const subscribe: SessionChange = { op: 'subscribe', clientId: 'a', key: 't/#', options: { qos: 1, noLocal: false, retainAsPublished: false, retainHandling: 0 } };
    assert.deepEqual(await written([row('a', []), subscribe, row('a', [7]), row('b', [1]), row('a', [])]), [['session a []', 'subscribe a', 'session b [1]']]);
  });

  test('a session row recorded after the session ended is written after the end', async () => {
    assert.deepEqual(await written([row('a', [1]), { op: 'end', clientId: 'a' }, row('a', [2]), row('a', [3])]), [['session a [1]', 'end a', 'session a [3]']]);
  });

  test('each batch writes the row again when it changed again', async () => {
    assert.deepEqual(await written([row('a', [1])], [row('a', [])]), [['session a [1]'], ['session a []']]);
  });
});
