// test-database: none
// Every registered error code, on every edge: each edge's map (http/errors.ts,
// http/websocket-errors.ts, mqtt/errors.ts, coap/errors.ts) gives it a code that edge's protocol
// allows for a refusal, and only internal errors fall back to "unspecified".
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { errorCodes, type ErrorCode } from '../src/core/errors.js';
import { httpStatusOf } from '../src/http/errors.js';
import { closeCodeOf } from '../src/http/websocket-errors.js';
import { allowedReasons, mqttReasonOf, type MqttContext } from '../src/mqtt/errors.js';
import { coapCodeOf } from '../src/coap/errors.js';

const codes = Object.keys(errorCodes) as ErrorCode[];

test('the registry is not empty and its codes are unique, dotted and lower case', () => {
  assert.ok(codes.length >= 35);
  for (const c of codes) assert.match(c, /^[a-z_]+(\.[a-z_]+)?$/, c);
});

test('HTTP: every code has a 4xx or 5xx status that agrees with its kind', () => {
  for (const code of codes) {
    const status = httpStatusOf(code);
    const kind = errorCodes[code].kind;
    assert.ok(Number.isInteger(status) && status >= 400 && status <= 599, `${code}: ${status}`);
    assert.equal(status >= 500, kind === 'internal' || kind === 'unavailable', `${code} (${kind}) → ${status}`);
  }
  assert.equal(httpStatusOf('auth.required'), 401);
  assert.equal(httpStatusOf('request.uri_too_long'), 414);
});

test('WebSocket: every code has a close code an endpoint may send (RFC 6455 §7.4.1)', () => {
  const sendable = (c: number) => (c >= 1000 && c <= 1014 && ![1004, 1005, 1006].includes(c)) || (c >= 4000 && c <= 4999);
  for (const code of codes) {
    const close = closeCodeOf(code);
    assert.ok(sendable(close), `${code}: ${close}`);
    assert.notEqual(close, 1000, `${code} is a refusal, not a normal closure`);
  }
  assert.equal(closeCodeOf('message.too_large'), 1009);
  assert.equal(closeCodeOf('auth.session_ended'), 4401);
});

test('MQTT: every code has a reason code each packet allows (CONNACK, PUBACK/PUBREC, SUBACK), 0x80 only for internal errors', () => {
  for (const context of ['connect', 'publish', 'subscribe'] as MqttContext[]) {
    for (const code of codes) {
      const reason = mqttReasonOf(code, context);
      assert.ok(allowedReasons[context].has(reason), `${context} ${code}: 0x${reason.toString(16)}`);
      if (errorCodes[code].kind !== 'internal') assert.notEqual(reason, 0x80, `${context} ${code} falls back to unspecified`);
    }
  }
  assert.equal(mqttReasonOf('message.invalid_payload', 'publish'), 0x99);
  assert.equal(mqttReasonOf('message.invalid_subtopic', 'subscribe'), 0x8f);
  assert.equal(mqttReasonOf('message.overloaded', 'publish'), 0x97);
  assert.equal(mqttReasonOf('auth.invalid_credentials', 'connect'), 0x86);
});

test('CoAP: every code has a 4.xx or 5.xx response code (RFC 7252 §5.9, §12.1.2)', () => {
  const defined = new Set(['4.00', '4.01', '4.02', '4.03', '4.04', '4.05', '4.06', '4.08', '4.09', '4.12', '4.13', '4.15', '4.22', '4.29', '5.00', '5.01', '5.02', '5.03', '5.04', '5.05']);
  for (const code of codes) {
    const c = coapCodeOf(code);
    assert.ok(defined.has(c), `${code}: ${c}`);
    assert.equal(c.startsWith('5.'), errorCodes[code].kind === 'internal' || errorCodes[code].kind === 'unavailable', `${code} → ${c}`);
  }
  assert.equal(coapCodeOf('auth.invalid_credentials'), '4.01');
});
