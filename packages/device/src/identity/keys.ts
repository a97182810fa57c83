/**
 * The device's key pair and what is made of it: an ECDSA P-256 key made on the device with
 * WebCrypto (the platform accepts no other, docs/identity.md), its PKCS#10 certificate request
 * (RFC 2986) built with @peculiar/x509, and what the SDK reads off a certificate.
 */
// tsyringe, under @peculiar/x509, needs the Reflect metadata API when it loads
import 'reflect-metadata';
import { createPrivateKey, createPublicKey, webcrypto, type KeyObject } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { FleetwireError } from '../errors.js';

const p256 = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const ecdsaSha256 = { name: 'ECDSA', hash: 'SHA-256' } as const;
/** X.520 serialNumber (2.5.4.5): the platform reads the device serial from it (or from the CN). */
const serialNumberOid = '2.5.4.5';
const crypto = webcrypto as unknown as Parameters<typeof x509.Pkcs10CertificateRequestGenerator.create>[1];
type KeyPair = Parameters<typeof x509.Pkcs10CertificateRequestGenerator.create>[0]['keys'];

/** A new P-256 private key, PKCS#8 PEM. */
export async function generateDeviceKey(): Promise<string> {
  const keys = (await webcrypto.subtle.generateKey(p256, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey));
  return pem('PRIVATE KEY', pkcs8);
}

/** Reads a private key PEM; only P-256 will do. */
export function readDeviceKey(keyPem: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPrivateKey(keyPem);
  } catch (e) {
    throw new FleetwireError('store_invalid', 'the device key does not load as a PEM private key', { cause: e });
  }
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw new FleetwireError('store_invalid', 'the device key is not an EC P-256 key, the only kind the platform certifies');
  }
  return key;
}

/** The public key of a private key, SubjectPublicKeyInfo PEM (what an operator registers). */
export function publicKeyPem(keyPem: string): string {
  return createPublicKey(readDeviceKey(keyPem)).export({ type: 'spki', format: 'pem' }).toString();
}

/** A certificate request of the key, subject serialNumber and CN = the serial, PEM. Each call signs anew: the platform refuses a CSR it saw before. */
export async function certificateRequest(keyPem: string, serial: string): Promise<string> {
  const key = readDeviceKey(keyPem);
  const keys: KeyPair = {
    privateKey: key.toCryptoKey(p256, false, ['sign']),
    publicKey: createPublicKey(key).toCryptoKey(p256, true, ['verify']),
  };
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({ name: [{ [serialNumberOid]: [serial] }, { CN: [serial] }], keys, signingAlgorithm: ecdsaSha256 }, crypto);
  return csr.toString('pem');
}

export interface CertificateFacts {
  serial: string;
  subjectCn: string | undefined;
  notBefore: Date;
  notAfter: Date;
}

export function readCertificate(certificatePem: string): CertificateFacts {
  let cert: x509.X509Certificate;
  try {
    cert = new x509.X509Certificate(certificatePem);
  } catch (e) {
    throw new FleetwireError('store_invalid', 'the certificate does not parse as a PEM X.509 certificate', { cause: e });
  }
  return { serial: cert.serialNumber.toLowerCase(), subjectCn: cert.subjectName.getField('CN')[0], notBefore: cert.notBefore, notAfter: cert.notAfter };
}

/** The PEM blocks of a file, in order (a chain file holds several). */
export function pemBlocks(text: string): string[] {
  return text.match(/-----BEGIN [A-Z0-9 ]+-----[\s\S]+?-----END [A-Z0-9 ]+-----\n?/g)?.map((b) => (b.endsWith('\n') ? b : `${b}\n`)) ?? [];
}

function pem(label: string, der: Buffer): string {
  const lines = der.toString('base64').match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}
