// An MQTT client made of raw packets over an in-memory stream pair: exact packets, no sockets.
import { Duplex } from 'node:stream';
import mqttPacket, { type ISubackPacket, type Packet } from 'mqtt-packet';
import type { Broker } from '../../src/mqtt/broker.js';

/** Two connected in-memory streams: what one writes, the other reads. */
export function duplexPair(): [Duplex, Duplex] {
  const ends: Duplex[] = [];
  const make = (other: number) =>
    new Duplex({
      read() {},
      write(chunk, _enc, cb) {
        ends[other]!.push(chunk);
        cb();
      },
      final(cb) {
        ends[other]!.push(null);
        cb();
      },
    });
  ends.push(make(1), make(0));
  return [ends[0]!, ends[1]!];
}

export type RawClient = ReturnType<typeof rawClient>;

/** A raw client: sends packets, collects what the broker answers. */
export function rawClient(broker: Broker, protocolVersion: 4 | 5) {
  const [clientSide, serverSide] = duplexPair();
  broker.handle(serverSide, { transport: 'memory' });
  const parser = mqttPacket.parser({ protocolVersion });
  const packets: Packet[] = [];
  let closed = false;
  parser.on('packet', (p: Packet) => packets.push(p));
  clientSide.on('data', (d: Buffer) => parser.parse(d));
  clientSide.on('end', () => (closed = true));
  return {
    packets,
    get closed() {
      return closed;
    },
    send(p: Packet) {
      clientSide.write(mqttPacket.generate(p, { protocolVersion }));
    },
    sendRaw(bytes: Buffer) {
      clientSide.write(bytes);
    },
    /** Closes the connection without DISCONNECT (as a client that goes away). */
    drop() {
      clientSide.end();
    },
    /** SUBSCRIBE to one filter (packet id 1) and wait for the SUBACK; its reason codes. */
    async subscribe(topic: string, qos: 0 | 1 | 2): Promise<number[]> {
      this.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic, qos }] });
      return ((await this.next('suback')) as ISubackPacket).granted as number[];
    },
    /**
     * PINGREQ, then waits for its PINGRESP: a connection's packets are handled in order, so the broker
     * has handled everything sent before, and what it sent before the PINGRESP has been received.
     */
    async ping(): Promise<void> {
      this.send({ cmd: 'pingreq' });
      await this.next('pingresp');
    },
    async next(cmd: string, ms = 2000): Promise<Packet> {
      const deadline = Date.now() + ms;
      for (;;) {
        const i = packets.findIndex((p) => p.cmd === cmd);
        if (i >= 0) return packets.splice(i, 1)[0]!;
        if (Date.now() > deadline) throw new Error(`no ${cmd} within ${ms} ms; got ${packets.map((p) => p.cmd).join(', ')}`);
        await new Promise((r) => setTimeout(r, 5));
      }
    },
  };
}
