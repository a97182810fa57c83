// The manufacturer CA forms' allow-list and refusals: run with `npm test -w @fleetwire/console`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fieldOfProblem, serialsFromText, serialsToText, shortFingerprint, subjectLine } from './manufacturer-ca-form.ts';

test('serial patterns are read one a line or separated by commas, trimmed, without empty ones or repeats', () => {
  assert.deepEqual(serialsFromText('AC-1*, AC-2*\n\n  AC-300 \r\nAC-1*,'), ['AC-1*', 'AC-2*', 'AC-300']);
  assert.deepEqual(serialsFromText(' \n , '), []);
  assert.deepEqual(serialsFromText(serialsToText(['A-*', 'B-7'])), ['A-*', 'B-7']);
});

test("a refusal is the field's its code, validation path or detail names; otherwise the form's", () => {
  assert.equal(fieldOfProblem({ code: 'manufacturer_ca.invalid', detail: 'The certificate is not a CA (basic constraints)' }), 'certificate');
  assert.equal(fieldOfProblem({ code: 'manufacturer_ca.exists', detail: 'The CA O=Acme is registered in the organization already' }), 'certificate');
  assert.equal(fieldOfProblem({ code: 'request.invalid', detail: 'body/serials/1 must match pattern "^[\\x21-\\x7e]+$"', errors: [{ path: 'body/serials/1', message: 'must match pattern' }] }), 'serials');
  assert.equal(fieldOfProblem({ code: 'request.invalid', detail: "body must have required property 'name'", errors: [{ path: 'body', message: "must have required property 'name'" }] }), 'name');
  assert.equal(fieldOfProblem({ code: 'request.invalid', detail: 'serials: at least one serial or pattern' }), 'serials');
  assert.equal(fieldOfProblem({ code: 'channel.not_found', detail: 'Channel not found' }), 'channels');
  assert.equal(fieldOfProblem({ code: 'group.not_found' }), 'groups');
  assert.equal(fieldOfProblem({ code: 'auth.forbidden', detail: 'identity:write is needed' }), undefined);
  assert.equal(fieldOfProblem('network down'), undefined);
});

test('a fingerprint is cut to 16 hex digits and a subject reads on one line', () => {
  assert.equal(shortFingerprint('ab'.repeat(32)), `${'ab'.repeat(8)}…`);
  assert.equal(shortFingerprint('abcd'), 'abcd');
  assert.equal(subjectLine('O=Acme\nCN=Acme Factory CA\n'), 'O=Acme, CN=Acme Factory CA');
});
