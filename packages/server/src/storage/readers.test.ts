import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestPlatform, type TestPlatform } from '../../test/helpers/platform.js';
import { smallFleet, type Fleet } from '../../test/helpers/fleet.js';
import { eventually } from '../../test/helpers/eventually.js';

describe('readers API', () => {
  let t: TestPlatform;
  let f: Fleet;
  const t0 = 1_699_999_980; // a minute boundary
  before(async () => {
    t = await startTestPlatform();
    f = await smallFleet(t);
    // one hour of a 1 Hz temperature (value = second of the hour % 60) plus a few other records
    const records = Array.from({ length: 3600 }, (_, i) => ({ n: 'temp', u: 'Cel', t: i, v: i % 60 }));
    for (let i = 0; i < records.length; i += 600) {
      const pack = [{ bn: 'dev:', bt: t0, ...records[i] }, ...records.slice(i + 1, i + 600)];
      await t.platform.messaging.publish({ client: { kind: 'device', credential: { kind: 'secret', secret: f.device.secret } }, channel: f.channel, subtopic: 'a', contentType: 'application/senml+json', payload: Buffer.from(JSON.stringify(pack)), protocol: 'http' });
    }
    const extra = [
      { bn: 'dev:', bt: t0 + 5000, n: 'door', vb: true },
      { n: 'door', t: 1, vb: false },
      { n: 'label', t: 2, vs: 'a,"b"' },
      { n: 'blob', t: 3, vd: 'AQID' },
      { n: 'energy', t: 4, s: 12.5 },
    ];
    await t.platform.messaging.publish({ client: { kind: 'device', credential: { kind: 'secret', secret: f.device.secret } }, channel: f.channel, subtopic: 'b/c', contentType: 'application/senml+json', payload: Buffer.from(JSON.stringify(extra)), protocol: 'mqtt' });
    await eventually(async () => assert.equal((await get('')).json().total, 3605), 10_000);
  });
  after(() => t.close());

  const get = (query: string) => t.request('GET', `/channels/${f.channel}/messages?total=true&${query}`, { token: f.ownerToken });

  test('paging: newest first by default, with total, offset and limit', async () => {
    const r = (await get('limit=3&offset=1')).json();
    assert.equal(r.total, 3605);
    assert.equal(r.offset, 1);
    assert.equal(r.limit, 3);
    assert.deepEqual(r.messages.map((m: { name: string }) => m.name), ['dev:blob', 'dev:label', 'dev:door']);
    const asc = (await get('limit=1&dir=asc')).json();
    assert.equal(asc.messages[0].time, t0);
    assert.equal((await get('limit=1001')).statusCode, 400);
  });

  test('paging without a count: no total unless asked, `more` and a cursor that walks every row once, either way', async () => {
    const plain = (query: string) => t.request('GET', `/channels/${f.channel}/messages?${query}`, { token: f.ownerToken });
    const first = (await plain('limit=3')).json();
    assert.equal(first.total, undefined);
    assert.equal(first.more, true);
    assert.equal(typeof first.next, 'string');
    const last = (await plain('limit=10&offset=3600')).json();
    assert.deepEqual([last.messages.length, last.more, last.next], [5, false, undefined]);
    for (const dir of ['desc', 'asc']) {
      const byOffset: string[] = [];
      for (let offset = 0; offset < 3605; offset += 1000) byOffset.push(...(await plain(`limit=1000&offset=${offset}&dir=${dir}`)).json().messages.map((m: { name: string; time: number }) => `${m.name}@${m.time}`));
      const byCursor: string[] = [];
      let cursor: string | undefined;
      for (let pages = 0; pages < 20; pages++) {
        const r = (await plain(`limit=400&dir=${dir}${cursor ? `&cursor=${cursor}` : ''}`)).json();
        byCursor.push(...r.messages.map((m: { name: string; time: number }) => `${m.name}@${m.time}`));
        if (!r.more) break;
        cursor = r.next;
      }
      assert.equal(byCursor.length, 3605);
      assert.deepEqual(byCursor, byOffset);
    }
    // a cursor is for its own kind of page and direction, and says where a page starts on its own
    assert.equal((await plain(`limit=3&dir=asc&cursor=${first.next}`)).statusCode, 400);
    assert.equal((await plain(`limit=3&type=json&cursor=${first.next}`)).statusCode, 400);
    assert.equal((await plain(`limit=3&offset=3&cursor=${first.next}`)).statusCode, 400);
    assert.equal((await plain('limit=3&cursor=not-a-cursor')).statusCode, 400);
  });

  test('filters: subtopic, publisher, name, value comparators, vb, vs, vd, time range', async () => {
    const total = async (q: string) => (await get(q)).json().total as number;
    assert.equal(await total('subtopic=b/c'), 5);
    assert.equal(await total('subtopic=/b/c/'), 5, 'subtopics are normalised');
    assert.equal(await total(`publisher=${f.device.id}`), 3605);
    assert.equal(await total('publisher=someone-else'), 0);
    assert.equal(await total(`publisher=${f.device.id}&subtopic=b/c`), 5);
    assert.equal(await total('publisher=someone-else&subtopic=b/c'), 0);
    assert.equal(await total('name=dev:temp'), 3600);
    assert.equal(await total('name=dev:temp&v=59'), 60);
    assert.equal(await total('name=dev:temp&v=10&comparator=lt'), 600);
    assert.equal(await total('name=dev:temp&v=10&comparator=le'), 660);
    assert.equal(await total('name=dev:temp&v=50&comparator=gt'), 540);
    assert.equal(await total('name=dev:temp&v=50&comparator=ge'), 600);
    assert.equal(await total('vb=false'), 1);
    assert.equal(await total('vs=a,"b"'), 1);
    assert.equal(await total('vd=AQID'), 1);
    assert.equal(await total(`from=${t0 + 100}&to=${t0 + 200}`), 100);
    assert.equal(await total(`from=${t0 + 100.5}&to=${t0 + 101.5}`), 1, 'fractions of seconds');
    assert.equal(await total(`from=${new Date((t0 + 3000) * 1000).toISOString()}`), 600 + 5);
    const sum = (await get('name=dev:energy')).json().messages[0];
    assert.equal(sum.sum, 12.5);
    assert.equal(sum.value, undefined);
    assert.equal((await get('from=yesterday')).statusCode, 400);
    assert.equal((await get('comparator=gt')).statusCode, 400);
  });

  test('order by value, name, subtopic or publisher, then time', async () => {
    const r = (await get('name=dev:temp&order=value&dir=desc&limit=2')).json();
    assert.deepEqual(r.messages.map((m: { value: number }) => m.value), [59, 59]);
    const n = (await get('order=name&dir=asc&limit=1')).json();
    assert.equal(n.messages[0].name, 'dev:blob');
    // subtopic 'a' holds the hour of temperatures, 'b/c' the five others (sent later, over MQTT)
    const bySubtopic = (await get('order=subtopic&dir=desc&limit=6')).json();
    assert.deepEqual(bySubtopic.messages.map((m: { subtopic: string; name: string }) => [m.subtopic, m.name]), [
      ['b/c', 'dev:energy'], ['b/c', 'dev:blob'], ['b/c', 'dev:label'], ['b/c', 'dev:door'], ['b/c', 'dev:door'], ['a', 'dev:temp'],
    ]);
    assert.deepEqual(bySubtopic.messages.map((m: { protocol: string }) => m.protocol), ['mqtt', 'mqtt', 'mqtt', 'mqtt', 'mqtt', 'http']);
    const byPublisher = (await get('order=publisher&dir=asc&limit=1')).json();
    assert.deepEqual([byPublisher.messages[0].publisher, byPublisher.messages[0].time], [f.device.id, t0]);
  });

  test('aggregation per minute: min, max, avg, sum, count', async () => {
    const agg = async (a: string) => (await get(`name=dev:temp&aggregation=${a}&interval=1m&dir=asc&limit=1000`)).json();
    const avg = await agg('avg');
    assert.equal(avg.total, 60);
    assert.deepEqual(avg.messages[0], { name: 'dev:temp', time: t0, value: 29.5, count: 60 });
    for (const m of avg.messages) assert.equal(m.count, 60);
    assert.equal((await agg('min')).messages[1].value, 0);
    assert.equal((await agg('max')).messages[1].value, 59);
    assert.equal((await agg('sum')).messages[1].value, (59 * 60) / 2);
    assert.equal((await agg('count')).messages[1].value, 60);
    // the same filters as the records: by source (subtopic, publisher) and by value
    const counted = async (q: string) => (await get(`aggregation=count&interval=1d&${q}`)).json().messages.reduce((s: number, m: { value: number }) => s + m.value, 0);
    assert.equal(await counted(`subtopic=a&publisher=${f.device.id}`), 3600);
    assert.equal(await counted('subtopic=b/c'), 5);
    assert.equal(await counted('subtopic=a&publisher=someone-else'), 0);
    assert.equal(await counted('name=dev:temp&v=10&comparator=lt'), 600);
    const hourly = (await get('name=dev:temp&aggregation=count&interval=1h')).json();
    assert.equal(hourly.messages.reduce((s: number, m: { value: number }) => s + m.value, 0), 3600);
    assert.equal((await get('aggregation=avg')).statusCode, 400, 'aggregation needs an interval');
    assert.equal((await get('aggregation=avg&interval=5x')).statusCode, 400);
    // 0s groups by nothing: refused before the database divides by it
    const zero = await get('aggregation=avg&interval=0s');
    assert.equal(zero.statusCode, 400, zero.body);
    assert.equal(zero.json().code, 'message.invalid_query');
  });

  test('latest value per name', async () => {
    const r = (await t.request('GET', `/channels/${f.channel}/messages/latest`, { token: f.ownerToken })).json();
    assert.deepEqual(
      r.messages.map((m: { name: string; time: number }) => [m.name, m.time]),
      [['dev:blob', t0 + 5003], ['dev:door', t0 + 5001], ['dev:energy', t0 + 5004], ['dev:label', t0 + 5002], ['dev:temp', t0 + 3599]],
    );
    assert.equal(r.messages[1].bool_value, false);
    const of = async (q: string) => (await t.request('GET', `/channels/${f.channel}/messages/latest?${q}`, { token: f.ownerToken })).json().messages.map((m: { name: string }) => m.name);
    assert.deepEqual(await of('subtopic=b/c'), ['dev:blob', 'dev:door', 'dev:energy', 'dev:label']);
    assert.deepEqual(await of('subtopic=a'), ['dev:temp']);
    assert.deepEqual(await of(`publisher=${f.device.id}&subtopic=a`), ['dev:temp']);
    assert.deepEqual(await of('publisher=someone-else'), []);
  });

  test('CSV export streams every matching record with quoting', async () => {
    const res = await get('format=csv&dir=asc');
    assert.equal(res.statusCode, 200);
    assert.match(String(res.headers['content-type']), /^text\/csv/);
    const lines = res.body.trimEnd().split('\r\n');
    assert.equal(lines[0], 'channel,subtopic,publisher,protocol,name,unit,time,update_time,value,string_value,bool_value,data_value,sum');
    assert.equal(lines.length, 1 + 3605);
    assert.equal(lines[1], `${f.channel},a,${f.device.id},http,dev:temp,Cel,${t0},,0,,,,`);
    assert.ok(lines.includes(`${f.channel},b/c,${f.device.id},mqtt,dev:label,,${t0 + 5002},,,"a,""b""",,,`));
    const filtered = await get('format=csv&name=dev:door');
    assert.equal(filtered.body.trimEnd().split('\r\n').length, 3);
  });
  // last: its records join the channel the tests above count
  test('a cursor pages through records that share one time without losing or repeating any', async () => {
    const at = t0 + 9000;
    const pack = Array.from({ length: 30 }, (_, i) => ({ ...(i === 0 ? { bn: 'tie:', bt: at } : {}), n: 'v', v: i }));
    await t.platform.messaging.publish({ client: { kind: 'device', credential: { kind: 'secret', secret: f.device.secret } }, channel: f.channel, subtopic: 'ties', contentType: 'application/senml+json', payload: Buffer.from(JSON.stringify(pack)), protocol: 'http' });
    const plain = (query: string) => t.request('GET', `/channels/${f.channel}/messages?subtopic=ties&${query}`, { token: f.ownerToken });
    await eventually(async () => assert.equal((await plain('limit=100')).json().messages.length, 30), 10_000);
    const values: number[] = [];
    let cursor = '';
    for (;;) {
      const r = (await plain(`limit=7&dir=asc${cursor ? `&cursor=${cursor}` : ''}`)).json();
      values.push(...r.messages.map((m: { value: number }) => m.value));
      if (!r.more) break;
      cursor = r.next;
    }
    assert.deepEqual(values, Array.from({ length: 30 }, (_, i) => i));
  });
});

describe('retention', () => {
  test('messages older than the retention period are pruned', async () => {
    const t = await startTestPlatform({ retention: 60_000 });
    try {
      const f = await smallFleet(t, 'retention@example.com');
      const publish = (v: number) => t.platform.messaging.publish({ client: { kind: 'device', credential: { kind: 'secret', secret: f.device.secret } }, channel: f.channel, subtopic: '', contentType: 'application/senml+json', payload: Buffer.from(JSON.stringify([{ n: 'x', v }])), protocol: 'http' });
      await publish(1);
      t.clock.advance(61_000);
      await publish(2);
      const count = async () => (await t.request('GET', `/channels/${f.channel}/messages?total=true`, { token: f.ownerToken })).json().total as number;
      await eventually(async () => assert.equal(await count(), 2));
      await t.platform.writer.prune();
      assert.equal(await count(), 1);
      const left = (await t.request('GET', `/channels/${f.channel}/messages`, { token: f.ownerToken })).json().messages[0];
      assert.equal(left.value, 2);
    } finally {
      await t.close();
    }
  });
});
