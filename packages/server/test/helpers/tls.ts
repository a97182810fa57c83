import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * A self-signed certificate made with openssl, in a new temp folder: PEM certificate, unencrypted
 * PEM key (P-256). For 127.0.0.1/localhost unless `names` says otherwise (e.g. the subject and
 * subjectAltName a documented openssl command uses).
 */
export function selfSignedCertificate(names: { subject: string; altNames: string } = { subject: '/CN=localhost', altNames: 'IP:127.0.0.1,DNS:localhost' }): { dir: string; certFile: string; keyFile: string; cert: string } {
  const dir = mkdtempSync(join(tmpdir(), 'fleetwire-tls-'));
  const certFile = join(dir, 'cert.pem');
  const keyFile = join(dir, 'key.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', names.subject, '-addext', `subjectAltName=${names.altNames}`, '-keyout', keyFile, '-out', certFile], { stdio: 'ignore' });
  return { dir, certFile, keyFile, cert: readFileSync(certFile, 'utf8') };
}

/** A CA, a server certificate for 127.0.0.1 and client certificates with the given CNs, all signed by the CA. */
export function certificateAuthority(clientCns: string[]): { dir: string; ca: string; serverCert: string; serverKey: string; clients: Record<string, { cert: string; key: string }> } {
  const dir = mkdtempSync(join(tmpdir(), 'fleetwire-ca-'));
  const f = (name: string) => join(dir, name);
  const ssl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'ignore' });
  ssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', '/CN=Fleetwire Test CA', '-keyout', f('ca.key'), '-out', f('ca.pem'));
  const issue = (name: string, cn: string, ext: string) => {
    ssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-subj', `/CN=${cn}`, '-keyout', f(`${name}.key`), '-out', f(`${name}.csr`));
    writeFileSync(f(`${name}.ext`), ext);
    ssl('x509', '-req', '-in', f(`${name}.csr`), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-CAcreateserial', '-days', '1', '-extfile', f(`${name}.ext`), '-out', f(`${name}.pem`));
  };
  issue('server', 'localhost', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  const clients: Record<string, { cert: string; key: string }> = {};
  clientCns.forEach((cn, i) => {
    issue(`client${i}`, cn, 'extendedKeyUsage=clientAuth\n');
    clients[cn] = { cert: f(`client${i}.pem`), key: f(`client${i}.key`) };
  });
  return { dir, ca: f('ca.pem'), serverCert: f('server.pem'), serverKey: f('server.key'), clients };
}

/** A device's own key pair and a CSR of it, made by openssl in a new temp folder, as a device makes them. */
export function deviceRequest(subject: string, keyType: 'p256' | 'rsa' = 'p256'): { dir: string; keyFile: string; csr: string; publicKey: string; fingerprint: string } {
  const dir = mkdtempSync(join(tmpdir(), 'fleetwire-device-'));
  const keyFile = join(dir, 'device.key');
  const newkey = keyType === 'p256' ? ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1'] : ['-newkey', 'rsa:2048'];
  execFileSync('openssl', ['req', '-new', ...newkey, '-nodes', '-subj', subject, '-keyout', keyFile, '-out', join(dir, 'device.csr')], { stdio: 'ignore' });
  const publicKey = execFileSync('openssl', ['pkey', '-in', keyFile, '-pubout'], { encoding: 'utf8' });
  const der = execFileSync('openssl', ['pkey', '-in', keyFile, '-pubout', '-outform', 'DER']);
  return { dir, keyFile, csr: readFileSync(join(dir, 'device.csr'), 'utf8'), publicKey, fingerprint: createHash('sha256').update(der).digest('hex') };
}

/** Another CSR of the same key (a device enrolling again with the key it keeps). */
export function anotherRequest(device: { dir: string; keyFile: string }, subject: string): string {
  const out = join(device.dir, `again-${Date.now()}-${Math.random().toString(36).slice(2)}.csr`);
  execFileSync('openssl', ['req', '-new', '-key', device.keyFile, '-subj', subject, '-out', out], { stdio: 'ignore' });
  return readFileSync(out, 'utf8');
}
