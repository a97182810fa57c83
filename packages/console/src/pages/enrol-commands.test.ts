// The enrolment commands the console shows: run with `npm test -w @fleetwire/console`. The shell
// reads each word back as it was meant (`sh` parses the commands; printf shows the words it got),
// and openssl takes the subject with a serial holding characters its -subj syntax uses.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deviceSdkCommand, mqttTlsCommand, opensslCurlCommands, shellWord } from './enrol-commands.ts';

/** The words `sh` makes of `text` after the command's name, one a line (printf in its place). */
function words(text: string): string[] {
  const out = execFileSync('sh', ['-c', `set -f; printf '%s\\n' ${text.replace(/^\S+/, '')}`], { encoding: 'utf8' });
  return out.split('\n').slice(0, -1);
}

test('a shell word keeps quotes, spaces, dollars and backslashes as they are', () => {
  for (const s of [`it's`, 'a b', '$HOME', 'back\\slash', `'`, '']) assert.deepEqual(words(`x ${shellWord(s)}`), [s]);
});

test('the SDK command names the token, the serial and the address, and the listener CA with MQTT over TLS', () => {
  const c = deviceSdkCommand({ http: 'http://10.0.0.5:8080', mqtts: 'mqtts://10.0.0.5:8883' }, 'fwe_a-b_c', `SN'7`);
  const [enrol, run] = c.text.split(/\n(?=fleetwire-device run)/);
  assert.deepEqual(words(enrol!), ['enrol', '--url', 'http://10.0.0.5:8080', '--token', 'fwe_a-b_c', '--serial', `SN'7`, '--ca', 'listener-ca.pem']);
  assert.equal(run, 'fleetwire-device run --interval 10');
  assert.ok(!deviceSdkCommand({ http: 'http://10.0.0.5:8080' }, 't', 's').text.includes('--ca'), 'no listener CA over plain HTTP and no MQTT over TLS');
});

test('mosquitto_pub over TLS uses the certificate and key the enrolment left, on the chosen channel; none without MQTT over TLS', () => {
  const c = mqttTlsCommand('mqtts://broker.example:18883', '0190-chan')!;
  assert.deepEqual(words(c.text.replaceAll('\\\n', '')), ['-h', 'broker.example', '-p', '18883', '--cafile', 'listener-ca.pem', '--cert', 'device.pem', '--key', 'device.key', '-V', 'mqttv5', '-q', '1', '-t', 'channels/0190-chan/messages/hello', '-m', '[{"n":"temp","u":"Cel","v":21.5}]']);
  assert.equal(mqttTlsCommand(undefined, 'x'), undefined);
});

test('openssl makes the request with a serial that holds / + = in the subject', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fleetwire-console-enrol-'));
  try {
    const [req] = opensslCurlCommands('http://127.0.0.1:8080', 'fwe_x', 'SN/1+2=3');
    execFileSync('sh', ['-c', req!.text], { cwd: dir, stdio: 'pipe' });
    const subject = execFileSync('openssl', ['req', '-in', join(dir, 'device.csr'), '-noout', '-subject', '-nameopt', 'RFC2253'], { encoding: 'utf8' });
    assert.match(subject, /serialNumber=SN\/1\\\+2=3$/m, subject); // RFC 2253 escapes the + only
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
