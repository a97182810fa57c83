// Realistic SenML (RFC 8428) packs for benches: what an environmental sensor sends every few
// seconds. Ten records, a base name per device, mostly numbers with units, one boolean, one string
// and one sum, as the stored rows of a real fleet look. Deterministic: the same seed gives the same packs.
import { uuidv7 } from '../src/core/ids.js';
import { seededRandom } from '../test/helpers/random.js';
import type { Envelope } from '../src/messaging/envelope.js';

export const recordsPerPack = 10;

/** Deterministic numbers, so runs store comparable data. */
export const random = seededRandom;

const round = (x: number, digits: number) => Math.round(x * 10 ** digits) / 10 ** digits;

/** A device's base name, `urn:dev:mac:…:` (RFC 8428 §12.4 style). */
export function baseName(device: number): string {
  return `urn:dev:mac:0024befffe${device.toString(16).padStart(6, '0')}:`;
}

/**
 * One pack of ten records. `time` (Unix seconds) goes into `bt` with per-record offsets like a
 * device that buffers readings; undefined leaves time out, so the platform stamps the receive time.
 */
export function senmlPack(device: number, rnd: () => number, time?: number): unknown[] {
  const head: Record<string, unknown> = { bn: baseName(device), bu: 'Cel', n: 'temperature', v: round(18 + rnd() * 8, 2) };
  if (time !== undefined) head.bt = time;
  return [
    head,
    { n: 'humidity', u: '%RH', v: round(30 + rnd() * 40, 1), t: -1 },
    { n: 'pressure', u: 'Pa', v: Math.round(99_000 + rnd() * 4000), t: -1 },
    { n: 'co2', u: 'ppm', v: Math.round(400 + rnd() * 800) },
    { n: 'battery', u: '%EL', v: Math.round(20 + rnd() * 80) },
    { n: 'voltage', u: 'V', v: round(3.3 + rnd() * 0.9, 3) },
    { n: 'rssi', u: 'dBW', v: -Math.round(50 + rnd() * 50) },
    { n: 'door', vb: rnd() < 0.1 },
    { n: 'firmware', vs: '2.4.1' },
    { n: 'energy', u: 'J', s: round(rnd() * 5000, 1), ut: 60 },
  ];
}

export const senmlJson = 'application/senml+json';

/**
 * Envelopes as the messaging service hands them to the bus: `devices` devices on `channels`
 * channels of one organization, each message a 10-record SenML JSON pack with absolute times.
 * The payloads are built once; `batch(i)` stamps fresh ids on them (every message is new to the
 * store, as on a live system), which costs about 1 µs per message.
 */
export class EnvelopeSource {
  private readonly envelopes: Envelope[];
  private clockMs: number;

  constructor(readonly size: number, opts: { devices?: number; channels?: number; seed?: number; startMs?: number } = {}) {
    const devices = opts.devices ?? 500;
    const channels = opts.channels ?? 10;
    const rnd = random(opts.seed ?? 1);
    this.clockMs = opts.startMs ?? Date.now() - 3_600_000;
    const org = uuidv7(this.clockMs);
    const channelIds = Array.from({ length: channels }, () => uuidv7(this.clockMs));
    const deviceIds = Array.from({ length: devices }, () => uuidv7(this.clockMs));
    this.envelopes = Array.from({ length: size }, (_, k) => {
      const device = k % devices;
      const receivedAt = this.clockMs + k;
      return {
        id: '',
        org,
        channel: channelIds[device % channels]!,
        subtopic: k % 3 === 0 ? 'lab/sensors' : '',
        publisher: deviceIds[device]!,
        protocol: 'http',
        contentType: senmlJson,
        payload: Buffer.from(JSON.stringify(senmlPack(device, rnd, Math.floor(receivedAt / 1000)))),
        receivedAt,
      } satisfies Envelope;
    });
  }

  /** The same messages with new ids, in id order, as the bus delivers them. */
  batch(): Envelope[] {
    for (const env of this.envelopes) env.id = uuidv7(this.clockMs++);
    return this.envelopes;
  }
}
