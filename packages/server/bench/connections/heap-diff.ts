// What a V8 heap snapshot holds, by kind of object, and what grew between two snapshots: the bytes
// each connection adds, by constructor (self size: each object's own bytes, so that the rows add up
// to the heap's growth instead of counting shared objects once per holder).
import { readFileSync } from 'node:fs';

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]] } };
  nodes: number[];
  strings: string[];
}

/** Kinds whose node names are contents (a string's text, a number), not what they are. */
const anonymousKinds = new Set(['string', 'concatenated string', 'sliced string', 'number', 'heap number', 'code', 'bigint', 'symbol']);

/** Objects and bytes per kind: `object Socket`, `closure onData`, `string`, … */
export function heapByKind(file: string): Map<string, { count: number; bytes: number }> {
  const s = JSON.parse(readFileSync(file, 'utf8')) as Snapshot;
  const fields = s.snapshot.meta.node_fields;
  const stride = fields.length;
  const typeAt = fields.indexOf('type');
  const nameAt = fields.indexOf('name');
  const sizeAt = fields.indexOf('self_size');
  const types = s.snapshot.meta.node_types[0];
  const kinds = new Map<string, { count: number; bytes: number }>();
  for (let i = 0; i < s.nodes.length; i += stride) {
    const type = types[s.nodes[i + typeAt]!]!;
    const kind = anonymousKinds.has(type) ? type : `${type} ${s.strings[s.nodes[i + nameAt]!]!.slice(0, 60)}`;
    const k = kinds.get(kind) ?? { count: 0, bytes: 0 };
    k.count++;
    k.bytes += s.nodes[i + sizeAt]!;
    kinds.set(kind, k);
  }
  return kinds;
}

export interface Growth {
  kind: string;
  /** Objects of this kind added per connection. */
  countPer: number;
  /** Bytes of this kind added per connection. */
  bytesPer: number;
}

/** Kinds that grew from `before` to `after`, per connection of `n`, largest first; the ones below `minBytes` per connection are left out. */
export function growthPerConnection(before: string, after: string, n: number, minBytes = 8): Growth[] {
  const a = heapByKind(before);
  const b = heapByKind(after);
  const rows: Growth[] = [];
  for (const [kind, k] of b) {
    const was = a.get(kind) ?? { count: 0, bytes: 0 };
    const bytesPer = (k.bytes - was.bytes) / n;
    if (bytesPer >= minBytes) rows.push({ kind, countPer: (k.count - was.count) / n, bytesPer });
  }
  return rows.sort((x, y) => y.bytesPer - x.bytesPer);
}
