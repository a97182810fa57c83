// Devices publishing steadily over HTTP, MQTT QoS 1 and confirmable CoAP, each message a SenML pack
// with one record `seq` whose value is unique (publisher index × 1,000,000 + sequence number), and a
// ledger of what each publisher sent and what the platform answered. Used by the fault test and
// the soak (test/soak.ts), in a process apart from the platform's.
import mqtt, { type MqttClient } from 'mqtt';
import coap from 'coap';
import { seededRandom } from './random.js';

export type Protocol = 'http' | 'mqtt' | 'coap';
export const protocols: readonly Protocol[] = ['http', 'mqtt', 'coap'];

/** Where the platform listens: fixed ports, so that a restarted process is found where the last one was. */
export interface Target {
  api: string;
  mqttPort: number;
  coapPort: number;
}

export interface PublisherOptions {
  /** The id prefix: ids are index × idsPerPublisher + seq. */
  index: number;
  org: string;
  channel: string;
  device: { id: string; secret: string };
  protocol: Protocol;
  /** Mean messages per second (exponential gaps from the seeded generator). */
  rate: number;
  /** Messages in flight at most; a tick that finds the window full sends nothing. */
  window: number;
  seed: number;
  /** MQTT only: protocol version 4 (3.1.1) or 5. */
  mqttVersion?: 4 | 5;
}

export const idsPerPublisher = 1_000_000;

type Outcome = { kind: 'acked' } | { kind: 'refused'; reason: string } | { kind: 'unanswered' };

/**
 * One device publishing until stop(). A message counts as acknowledged only on HTTP 202, a PUBACK
 * without an error reason code, or CoAP 2.04; as refused on any other answer; as unanswered when
 * the connection failed or nothing came back before stop() gave up on it (its fate is unknown: it
 * may or may not be stored, and either is allowed).
 */
export class Publisher {
  readonly index: number;
  readonly protocol: Protocol;
  readonly org: string;
  readonly channel: string;
  /** MQTT's protocol version; undefined on HTTP and CoAP. */
  readonly mqttVersion: 4 | 5 | undefined;
  sent = 0;
  /** Acknowledged ids and when the acknowledgement arrived (ms since the epoch). */
  readonly acked = new Map<number, number>();
  /** When each message was first sent (ms), to tell a CoAP retransmission across a restart. */
  readonly sentAt = new Map<number, number>();
  readonly refused = new Map<string, number>();
  unanswered = 0;
  private seq = 0;
  private stopped = false;
  private loop: Promise<void> | undefined;
  private readonly pending = new Map<number, (o: Outcome) => void>();
  private readonly random: () => number;
  private mqttClient: MqttClient | undefined;
  private mqttConnected = false;
  /** The ids sent on the current MQTT connection and not answered yet: unanswered if it closes. */
  private mqttInFlight = new Set<number>();
  private mqttClients = 0;
  private coapAgent: coap.Agent | undefined;

  constructor(
    private readonly target: Target,
    private readonly options: PublisherOptions,
  ) {
    this.index = options.index;
    this.protocol = options.protocol;
    this.org = options.org;
    this.channel = options.channel;
    this.mqttVersion = options.protocol === 'mqtt' ? (options.mqttVersion ?? 5) : undefined;
    this.random = seededRandom(options.seed);
  }

  start(): void {
    if (this.protocol === 'mqtt') this.connectMqtt();
    if (this.protocol === 'coap') this.coapAgent = new coap.Agent({ type: 'udp4' });
    this.loop = this.run();
  }

  /** Stops sending, waits up to `graceMs` for the answers in flight, counts the rest as unanswered. */
  async stop(graceMs: number): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await this.loop;
    const deadline = Date.now() + graceMs;
    while (this.pending.size > 0 && Date.now() < deadline) await sleep(50);
    for (const settle of [...this.pending.values()]) settle({ kind: 'unanswered' });
    this.mqttClient?.end(true);
    this.coapAgent?.close();
  }

  get refusedTotal(): number {
    let n = 0;
    for (const c of this.refused.values()) n += c;
    return n;
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      // exponential gaps: a Poisson stream of the given mean rate
      await sleep((-Math.log(1 - this.random()) * 1000) / this.options.rate);
      const subtopic = `load/${Math.floor(this.random() * 4)}`;
      if (this.stopped || this.pending.size >= this.options.window) continue;
      if (this.protocol === 'mqtt' && !this.mqttConnected) continue;
      const id = this.index * idsPerPublisher + this.seq++;
      this.sent++;
      this.sentAt.set(id, Date.now());
      const outcome = new Promise<Outcome>((resolve) => {
        this.pending.set(id, (o) => {
          if (!this.pending.delete(id)) return; // settled already (a late answer after stop or close)
          resolve(o);
        });
      });
      void outcome.then((o) => this.record(id, o));
      const body = JSON.stringify([{ n: 'seq', v: id }]);
      if (this.protocol === 'http') this.sendHttp(id, subtopic, body);
      else if (this.protocol === 'mqtt') this.sendMqtt(id, subtopic, body);
      else this.sendCoap(id, subtopic, body);
    }
  }

  private record(id: number, o: Outcome): void {
    if (o.kind === 'acked') this.acked.set(id, Date.now());
    else if (o.kind === 'refused') this.refused.set(o.reason, (this.refused.get(o.reason) ?? 0) + 1);
    else this.unanswered++;
  }

  private settle(id: number, o: Outcome): void {
    this.pending.get(id)?.(o);
  }

  private sendHttp(id: number, subtopic: string, body: string): void {
    fetch(`${this.target.api}/channels/${this.channel}/messages/${subtopic}`, {
      method: 'POST',
      headers: { authorization: `Device ${this.options.device.secret}`, 'content-type': 'application/senml+json' },
      body,
      signal: AbortSignal.timeout(10_000),
    }).then(
      async (res) => {
        await res.arrayBuffer();
        this.settle(id, res.status === 202 ? { kind: 'acked' } : { kind: 'refused', reason: `HTTP ${res.status}` });
      },
      () => this.settle(id, { kind: 'unanswered' }),
    );
  }

  /** One MQTT.js client per connection: a new one after each close, so that nothing is resent with an id already counted. */
  private connectMqtt(): void {
    if (this.stopped) return;
    const client = mqtt.connect(`mqtt://127.0.0.1:${this.target.mqttPort}`, {
      username: this.options.device.id,
      password: this.options.device.secret,
      clientId: `fault-${this.index}-${this.mqttClients++}`,
      protocolVersion: this.mqttVersion,
      clean: true,
      reconnectPeriod: 0,
      connectTimeout: 5000,
    });
    this.mqttClient = client;
    const inFlight = new Set<number>();
    this.mqttInFlight = inFlight;
    client.on('connect', () => (this.mqttConnected = true));
    client.on('error', () => {}); // a refused CONNACK or a refused socket: 'close' follows
    client.once('close', () => {
      this.mqttConnected = false;
      for (const id of inFlight) this.settle(id, { kind: 'unanswered' });
      client.end(true);
      if (!this.stopped) setTimeout(() => this.connectMqtt(), 200);
    });
  }

  private sendMqtt(id: number, subtopic: string, body: string): void {
    const inFlight = this.mqttInFlight;
    inFlight.add(id);
    this.mqttClient!.publish(`channels/${this.channel}/messages/${subtopic}`, body, { qos: 1 }, (err) => {
      inFlight.delete(id);
      const code = (err as { code?: unknown } | undefined)?.code;
      if (!err) this.settle(id, { kind: 'acked' });
      else if (typeof code === 'number') this.settle(id, { kind: 'refused', reason: `PUBACK 0x${code.toString(16)}` });
      else this.settle(id, { kind: 'unanswered' });
    });
  }

  private sendCoap(id: number, subtopic: string, body: string): void {
    const req = coap.request({
      hostname: '127.0.0.1',
      port: this.target.coapPort,
      method: 'POST',
      pathname: `/channels/${this.channel}/messages/${subtopic}`,
      query: `auth=${this.options.device.secret}`,
      confirmable: true,
      agent: this.coapAgent!,
    });
    req.setOption('Content-Format', 'application/senml+json');
    req.on('response', (res: coap.IncomingMessage) => {
      res.resume();
      this.settle(id, res.code === '2.04' ? { kind: 'acked' } : { kind: 'refused', reason: `CoAP ${res.code}` });
    });
    req.on('error', () => this.settle(id, { kind: 'unanswered' }));
    req.on('timeout', () => this.settle(id, { kind: 'unanswered' }));
    req.end(body);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
