// A raw MQTT 3.1.1 client for the load generators (bench/mqtt/load.ts, bench/gateway/devices.ts,
// bench/mtls/load.ts, over TLS with a device certificate):
// mqtt-packet makes the rare packets; PUBLISH/PUBACK are made and read here directly, so that the
// generator costs little and the broker, not the generator, is what is measured.
import net from 'node:net';
import tls from 'node:tls';
import mqttPacket from 'mqtt-packet';
import { encodeAck } from '../../src/mqtt/wire.js';

/** What the generator needs of a packet from the broker. */
export interface Incoming {
  cmd: 'publish' | 'puback' | 'connack' | 'suback' | 'other';
  qos: number;
  messageId: number;
  payload: Buffer;
  returnCode: number;
  granted: number[];
}

/**
 * Splits the broker's byte stream into MQTT 3.1.1 packets and reads the few fields the generator
 * uses (§2.2 fixed header; §3.2, §3.3, §3.4, §3.9).
 */
class PacketReader {
  private buf: Buffer = Buffer.alloc(0);

  constructor(private readonly onPacket: (p: Incoming) => void) {}

  push(chunk: Buffer): void {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    let at = 0;
    for (;;) {
      if (this.buf.length - at < 2) break;
      let length = 0;
      let multiplier = 1;
      let i = at + 1;
      let complete = false;
      for (let n = 0; n < 4 && i < this.buf.length; n++) {
        const byte = this.buf[i++]!;
        length += (byte & 0x7f) * multiplier;
        multiplier *= 128;
        if ((byte & 0x80) === 0) {
          complete = true;
          break;
        }
      }
      if (!complete || this.buf.length - i < length) break;
      this.dispatch(this.buf[at]!, this.buf.subarray(i, i + length));
      at = i + length;
    }
    this.buf = at === this.buf.length ? Buffer.alloc(0) : this.buf.subarray(at);
  }

  private dispatch(header: number, body: Buffer): void {
    const type = header >> 4;
    const p: Incoming = { cmd: 'other', qos: 0, messageId: 0, payload: body, returnCode: 0, granted: [] };
    if (type === 3) {
      p.cmd = 'publish';
      p.qos = (header >> 1) & 3;
      let at = 2 + body.readUInt16BE(0);
      if (p.qos > 0) {
        p.messageId = body.readUInt16BE(at);
        at += 2;
      }
      p.payload = body.subarray(at);
    } else if (type === 4) {
      p.cmd = 'puback';
      p.messageId = body.readUInt16BE(0);
    } else if (type === 2) {
      p.cmd = 'connack';
      p.returnCode = body[1]!;
    } else if (type === 9) {
      p.cmd = 'suback';
      p.granted = [...body.subarray(2)];
    }
    this.onPacket(p);
  }
}

/** A raw MQTT 3.1.1 client over TCP: as little work per packet as a client can do. */
export class Client {
  readonly sock: net.Socket;
  private readonly reader = new PacketReader((p) => this.onPacket(p));
  onPublish: ((p: Incoming) => void) | undefined;
  onPuback: ((messageId: number) => void) | undefined;
  private waiting = new Map<string, (p: Incoming) => void>();
  private corked = false;

  /**
   * `localAddress`: the 127.x.y.z address to connect from (each has its own ephemeral ports).
   * `secure`: MQTT over TLS with these options (a client certificate and key, the CA of the
   * listener); the CONNECT waits in the socket until the handshake is done.
   */
  constructor(port: number, onError: (message: string) => void, localAddress?: string, secure?: tls.ConnectionOptions) {
    // Nagle off from the socket's creation: a TLS socket's setNoDelay below comes too late for the handshake
    const address = { port, host: '127.0.0.1', noDelay: true, ...(localAddress ? { localAddress } : {}) };
    this.sock = secure ? tls.connect({ ...secure, ...address }) : net.connect(address);
    this.sock.setNoDelay(true);
    this.sock.on('data', (d: Buffer) => this.reader.push(d));
    this.sock.on('error', (e) => onError(e.message));
  }

  private onPacket(p: Incoming): void {
    if (p.cmd === 'publish') {
      this.onPublish?.(p);
      if (p.qos === 1) this.send(encodeAck('puback', p.messageId));
      return;
    }
    if (p.cmd === 'puback') return this.onPuback?.(p.messageId);
    const w = this.waiting.get(p.cmd);
    if (w) {
      this.waiting.delete(p.cmd);
      w(p);
    }
  }

  /** Writes, corked until the packets made together are written: the generator's own system calls stay few, whichever broker it drives. */
  send(buf: Buffer): boolean {
    if (!this.corked) {
      this.corked = true;
      this.sock.cork();
      process.nextTick(() => {
        this.corked = false;
        this.sock.uncork();
      });
    }
    return this.sock.write(buf);
  }

  private expect(cmd: Incoming['cmd']): Promise<Incoming> {
    return new Promise((resolve, reject) => {
      this.waiting.set(cmd, resolve);
      this.sock.once('close', () => reject(new Error(`closed while waiting for ${cmd}`)));
    });
  }

  async connect(clientId: string, cred?: { username: string; password: string }): Promise<void> {
    const ack = this.expect('connack');
    this.sock.write(mqttPacket.generate({ cmd: 'connect', protocolVersion: 4, clientId, clean: true, keepalive: 0, ...(cred ? { username: cred.username, password: Buffer.from(cred.password) } : {}) }));
    const p = await ack;
    if (p.returnCode !== 0) throw new Error(`CONNACK ${p.returnCode}`);
  }

  async subscribe(filter: string, qos: 0 | 1): Promise<void> {
    const ack = this.expect('suback');
    this.sock.write(mqttPacket.generate({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: filter, qos }] }));
    const p = await ack;
    if ((p.granted[0] ?? 0x80) >= 0x80) throw new Error(`SUBACK refused ${filter}`);
  }
}

