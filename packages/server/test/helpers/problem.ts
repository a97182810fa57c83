import assert from 'node:assert/strict';
import type { LightMyRequestResponse } from 'fastify';

/** Asserts an RFC 9457 problem+json answer with this status and stable `code`. */
export function assertProblem(res: LightMyRequestResponse, status: number, code: string): void {
  assert.equal(res.statusCode, status, `expected ${status} ${code}, got ${res.statusCode}: ${res.body}`);
  assert.match(String(res.headers['content-type']), /^application\/problem\+json/);
  const body = res.json();
  assert.equal(body.code, code);
  assert.equal(body.status, status);
}
