import type { Envelope } from '../messaging/envelope.js';
import { parsedPayloadOf } from '../messaging/parsed.js';

/** The columns every stored row takes from its message's envelope. */
interface EnvelopeColumns {
  id: string;
  org_id: string;
  channel: string;
  subtopic: string;
  publisher: string;
  protocol: string;
}

/** One stored SenML record (or numeric field of a JSON document). */
export interface RecordRow extends EnvelopeColumns {
  seq: number;
  name: string;
  unit: string | null;
  time: number;
  update_time: number | null;
  value: number | null;
  string_value: string | null;
  bool_value: boolean | null;
  data_value: string | null;
  sum: number | null;
}

export interface DocumentRow extends EnvelopeColumns {
  seq: number;
  time: number;
  document: string; // JSON text
}

export interface PayloadRow extends EnvelopeColumns {
  content_type: string;
  time: number;
  size: number;
  truncated: boolean;
  payload: Buffer;
}

export interface RowBatch {
  /** Ids of the messages the rows come from, one per message: the sink stores a message's rows only when its id is new. */
  ids: string[];
  records: RecordRow[];
  documents: DocumentRow[];
  payloads: PayloadRow[];
}

export function emptyBatch(): RowBatch {
  return { ids: [], records: [], documents: [], payloads: [] };
}

/**
 * Turns envelopes into rows: one per SenML record, one document plus one row per numeric field
 * per JSON object, one payload row per opaque message (cut at `opaqueMaxBytes`).
 */
export function toRows(envs: Envelope[], opaqueMaxBytes: number, into: RowBatch = emptyBatch()): RowBatch {
  for (const env of envs) {
    const receivedAt = env.receivedAt / 1000;
    const parsed = parsedPayloadOf(env);
    // adapters validate, so this is a message from elsewhere (an older node on NATS, say): its
    // batch fails, and the writer sets it aside with the reason (writer.ts)
    if (parsed.kind === 'invalid') throw new Error(`message ${env.id} has an invalid ${env.contentType} payload: ${parsed.error}`);
    into.ids.push(env.id);
    switch (parsed.kind) {
      case 'senml': {
        let seq = 0;
        for (const r of parsed.records) {
          into.records.push({
            id: env.id, seq: seq++, org_id: env.org, channel: env.channel, subtopic: env.subtopic, publisher: env.publisher, protocol: env.protocol,
            name: r.name,
            unit: r.unit ?? null,
            time: r.time,
            update_time: r.updateTime ?? null,
            value: r.value ?? null,
            string_value: r.stringValue ?? null,
            bool_value: r.boolValue ?? null,
            data_value: r.dataValue ?? null,
            sum: r.sum ?? null,
          });
        }
        break;
      }
      case 'json': {
        let seq = 0;
        parsed.documents.forEach((doc, i) => {
          into.documents.push({ id: env.id, seq: i, org_id: env.org, channel: env.channel, subtopic: env.subtopic, publisher: env.publisher, protocol: env.protocol, time: receivedAt, document: JSON.stringify(doc) });
          for (const [name, value] of Object.entries(parsed.numbers[i]!)) {
            into.records.push({
              id: env.id, seq: seq++, org_id: env.org, channel: env.channel, subtopic: env.subtopic, publisher: env.publisher, protocol: env.protocol,
              name, unit: null, time: receivedAt, update_time: null, value, string_value: null, bool_value: null, data_value: null, sum: null,
            });
          }
        });
        break;
      }
      case 'opaque': {
        const truncated = env.payload.length > opaqueMaxBytes;
        into.payloads.push({
          id: env.id, org_id: env.org, channel: env.channel, subtopic: env.subtopic, publisher: env.publisher, protocol: env.protocol,
          content_type: env.contentType, time: receivedAt, size: env.payload.length, truncated,
          payload: truncated ? env.payload.subarray(0, opaqueMaxBytes) : env.payload,
        });
        break;
      }
    }
  }
  return into;
}
