// The identity events and revocations in words: run with `npm test -w @fleetwire/console`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { actions, actorWords, eventWords, revocationWords } from './identity-words.ts';

test('a renewal and a supersession read as what happened to the certificates', () => {
  assert.equal(eventWords({ action: 'renew', outcome: 'ok', code: null }), 'Certificate renewal');
  assert.equal(eventWords({ action: 'renew', outcome: 'refused', code: 'renewal.certificate_inactive' }), 'Certificate renewal refused (renewal.certificate_inactive)');
  assert.equal(eventWords({ action: 'supersede', outcome: 'ok', code: null }), 'Renewed certificate in use, the one it replaces revoked');
  assert.equal(actorWords('device'), 'the device, with its certificate');
});

test('every action of the API has words, and each actor kind reads as who it was', () => {
  assert.equal(new Set(actions.map((a) => eventWords({ action: a, outcome: 'ok', code: null }))).size, actions.length, 'no two actions read alike');
  assert.deepEqual(['user:0190', 'token:0191', 'token', 'key', 'something new'].map(actorWords), ['a member', 'a device, with an enrolment token', 'a device, with an enrolment token', 'a device, with its registered key', 'something new']);
});

test("a manufacturer CA's change and a factory certificate's enrolment read as what they were", () => {
  assert.equal(eventWords({ action: 'manufacturer_ca', outcome: 'ok', code: null }), 'Manufacturer CA changed');
  assert.equal(eventWords({ action: 'enrol', outcome: 'refused', code: 'enrolment.factory_certificate_invalid' }), 'Enrolment refused (enrolment.factory_certificate_invalid)');
  assert.equal(actorWords('manufacturer'), "a device, with its maker's factory certificate");
});

test('superseded reads as replaced by a renewal only when the renewal is known', () => {
  assert.equal(revocationWords('superseded', 'ab12'), 'replaced by a renewal');
  assert.equal(revocationWords('superseded', undefined), 'superseded');
  assert.equal(revocationWords('keyCompromise', undefined), 'key compromise');
  assert.equal(revocationWords(null, undefined), 'no reason given');
});
