import type { Peer } from './message.js';
import { peerKey } from './message.js';

/** RFC 7252 §4.8 transmission parameters. */
export interface TransmissionParameters {
  /** ACK_TIMEOUT, ms (2 s in the RFC). */
  ackTimeoutMs: number;
  /** ACK_RANDOM_FACTOR (1.5). */
  ackRandomFactor: number;
  /** MAX_RETRANSMIT (4). */
  maxRetransmit: number;
}

export type Outcome = 'ack' | 'reset' | 'timeout';

interface Pending {
  peer: Peer;
  datagram: Buffer;
  retransmits: number;
  timeoutMs: number;
  timer: NodeJS.Timeout;
  done: (outcome: Outcome) => void;
}

/**
 * Confirmable messages we send (notifications, pings): retransmitted with exponential back-off
 * until an ACK or RST with the same message ID comes, or given up after MAX_RETRANSMIT
 * (RFC 7252 §4.2). One entry per message in flight; the observers keep at most one each.
 */
export class Confirmables {
  private readonly pending = new Map<string, Pending>();

  constructor(
    private readonly params: TransmissionParameters,
    private readonly send: (datagram: Buffer, peer: Peer) => void,
    private readonly onRetransmit: () => void,
  ) {}

  start(peer: Peer, messageId: number, datagram: Buffer, done: (outcome: Outcome) => void): void {
    const key = `${peerKey(peer)}:${messageId}`;
    // RFC 7252 §4.2: the initial timeout is random between ACK_TIMEOUT and ACK_TIMEOUT × ACK_RANDOM_FACTOR
    const timeoutMs = this.params.ackTimeoutMs * (1 + Math.random() * (this.params.ackRandomFactor - 1));
    const p: Pending = { peer, datagram, retransmits: 0, timeoutMs, done, timer: setTimeout(() => this.expire(key), timeoutMs) };
    p.timer.unref();
    this.pending.set(key, p);
    this.send(datagram, peer);
  }

  private expire(key: string): void {
    const p = this.pending.get(key);
    if (!p) return;
    if (p.retransmits >= this.params.maxRetransmit) {
      this.pending.delete(key);
      p.done('timeout');
      return;
    }
    p.retransmits++;
    p.timeoutMs *= 2; // RFC 7252 §4.2: the timeout doubles with each retransmission
    p.timer = setTimeout(() => this.expire(key), p.timeoutMs);
    p.timer.unref();
    this.onRetransmit();
    this.send(p.datagram, p.peer);
  }

  /** An ACK or RST came; true when it matched a message in flight. */
  settle(peer: Peer, messageId: number, outcome: 'ack' | 'reset'): boolean {
    const key = `${peerKey(peer)}:${messageId}`;
    const p = this.pending.get(key);
    if (!p) return false;
    clearTimeout(p.timer);
    this.pending.delete(key);
    p.done(outcome);
    return true;
  }

  close(): void {
    for (const p of this.pending.values()) clearTimeout(p.timer);
    this.pending.clear();
  }
}
