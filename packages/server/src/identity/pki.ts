// The platform's certificate authority: a root, one issuing CA per organization, device certificates
// issued from CSRs (a device's private key never leaves it), listener certificates, CRLs and the
// certs-only CMS that EST (RFC 7030) answers with.
//
// Certificates are written and read here with a small DER codec of our own rather than through
// @peculiar/x509 (design.md's choice), for speed: on this machine @peculiar/x509 2.2.0 took 2.1 ms to
// issue a device certificate and 0.8 ms to parse and verify a CSR, against 0.07 and 0.17 ms here,
// which put the target of 500 enrolments a second out of reach on two cores. The structures are few
// and fixed (RFC 5280 §4.1, §5.1; RFC 2986 §4; RFC 5652 §5); the reader refuses what DER does not
// allow (indefinite or non-minimal lengths, elements past their parent) and pki.test.ts feeds it
// mutated requests; signing, verifying and key parsing go straight to node:crypto.
//
// ECDSA P-256 with SHA-256 throughout (RFC 5480, RFC 5758 §3.2).
import {
  KeyObject,
  X509Certificate,
  createCipheriv,
  createDecipheriv,
  createHash,
  createPrivateKey,
  createPublicKey,
  randomBytes,
  sign as signBytes,
  verify as verifyBytes,
  type webcrypto,
} from 'node:crypto';
import { isIPv4, isIPv6 } from 'node:net';

// the WebCrypto types, which this package's lib (no DOM) does not declare globally
type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;
type EcKeyAlgorithm = webcrypto.EcKeyAlgorithm;

export interface CaKeyPair {
  certificatePem: string;
  privateKey: CryptoKey;
  publicKey: CryptoKey;
}

export type CsrRefusal = 'csr_malformed' | 'csr_signature' | 'csr_key_type' | 'csr_curve' | 'csr_too_large' | 'csr_ca_requested';

/** Why a CSR was refused; `code` is stable and goes out to the enrolling device. */
export class CsrError extends Error {
  constructor(
    readonly code: CsrRefusal,
    message: string,
  ) {
    super(message);
    this.name = 'CsrError';
  }
}

export type PkiRefusal =
  | 'certificate_malformed'
  | 'key_unreadable'
  | 'key_type'
  | 'key_mismatch'
  | 'not_a_ca'
  | 'key_decrypt'
  | 'kek_size'
  | 'invalid_argument'
  | 'ocsp_malformed';

/** Anything else this module refuses: unreadable or mismatched keys and certificates, bad arguments. */
export class PkiError extends Error {
  constructor(
    readonly code: PkiRefusal,
    message: string,
  ) {
    super(message);
    this.name = 'PkiError';
  }
}

export interface VerifiedCsr {
  /** SubjectPublicKeyInfo DER, re-encoded in its uncompressed form */
  spki: Uint8Array;
  /** lowercase hex SHA-256 of `spki` */
  fingerprint: string;
  subjectCommonName?: string;
  /** the subject's serialNumber attribute (2.5.4.5), if any */
  serialNumber?: string;
}

export interface IssuedCertificate {
  pem: string;
  der: Uint8Array;
  /** lowercase hex, 32 digits */
  serial: string;
  /** lowercase hex SHA-256 of `der` */
  fingerprint: string;
  notBefore: Date;
  notAfter: Date;
}

export interface CertificateFacts {
  serial: string;
  fingerprint: string;
  subjectCommonName?: string;
  organization?: string;
  sanUris: string[];
  issuerCommonName?: string;
  notBefore: Date;
  notAfter: Date;
  isCa: boolean;
  spkiFingerprint: string;
}

export type RevocationReason = 'unspecified' | 'keyCompromise' | 'superseded' | 'cessationOfOperation' | 'certificateHold';

const defaults = {
  rootValidityDays: 7305, // 20 years
  issuingValidityDays: 3653, // 10 years
  deviceValidityDays: 90,
  // the platform renews its listener certificates itself; under the 398 days browsers accept
  serverValidityDays: 365,
  serverMaxValidityDays: 397, // CA/Browser Forum Baseline Requirements §6.3.2: at most 398 days, kept a day short

  clockSkewMs: 5 * 60_000, // notBefore is backdated by this much, for devices whose clocks run behind
  crlNextUpdateHours: 24,
  csrMaxBytes: 4096,
};

const dayMs = 86_400_000;

const oids = {
  ecPublicKey: '1.2.840.10045.2.1',
  p256: '1.2.840.10045.3.1.7',
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  ecdsaWithSha384: '1.2.840.10045.4.3.3',
  ecdsaWithSha512: '1.2.840.10045.4.3.4',
  commonName: '2.5.4.3',
  serialNumber: '2.5.4.5',
  organization: '2.5.4.10',
  extensionRequest: '1.2.840.113549.1.9.14',
  msExtensionRequest: '1.3.6.1.4.1.311.2.1.14',
  subjectKeyIdentifier: '2.5.29.14',
  keyUsage: '2.5.29.15',
  subjectAltName: '2.5.29.17',
  basicConstraints: '2.5.29.19',
  crlNumber: '2.5.29.20',
  reasonCode: '2.5.29.21',
  authorityKeyIdentifier: '2.5.29.35',
  extKeyUsage: '2.5.29.37',
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
  cmsData: '1.2.840.113549.1.7.1',
  cmsSignedData: '1.2.840.113549.1.7.2',
};

const signatureHashes: Record<string, string> = {
  [oids.ecdsaWithSha256]: 'sha256',
  [oids.ecdsaWithSha384]: 'sha384',
  [oids.ecdsaWithSha512]: 'sha512',
};

const tags = {
  boolean: 0x01,
  integer: 0x02,
  bitString: 0x03,
  octetString: 0x04,
  oid: 0x06,
  enumerated: 0x0a,
  utf8String: 0x0c,
  printableString: 0x13,
  teletexString: 0x14,
  ia5String: 0x16,
  utcTime: 0x17,
  generalizedTime: 0x18,
  universalString: 0x1c,
  bmpString: 0x1e,
  sequence: 0x30,
  set: 0x31,
};

// ---------------------------------------------------------------------------------------------------
// DER writing (X.690 §10: definite lengths, minimal encodings)

function encodeLength(length: number): Buffer {
  if (length < 0x80) return Buffer.of(length);
  const bytes: number[] = [];
  for (let n = length; n > 0; n = Math.floor(n / 256)) bytes.unshift(n & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

function tlv(tag: number, ...contents: Uint8Array[]): Buffer {
  const body = contents.length === 1 ? contents[0]! : Buffer.concat(contents);
  return Buffer.concat([Buffer.of(tag), encodeLength(body.length), body]);
}

const sequence = (...contents: Uint8Array[]) => tlv(tags.sequence, ...contents);
const octetString = (bytes: Uint8Array) => tlv(tags.octetString, bytes);
const bitString = (bytes: Uint8Array, unusedBits = 0) => tlv(tags.bitString, Buffer.of(unusedBits), bytes);
const utf8String = (text: string) => tlv(tags.utf8String, Buffer.from(text, 'utf8'));
const ia5String = (text: string) => tlv(tags.ia5String, Buffer.from(text, 'latin1'));
/** [n] EXPLICIT */
const explicit = (n: number, ...contents: Uint8Array[]) => tlv(0xa0 | n, ...contents);
const derTrue = Buffer.of(tags.boolean, 0x01, 0xff);
const empty = Buffer.alloc(0);

const encodedOids = new Map<string, Buffer>();
function oid(dotted: string): Buffer {
  let encoded = encodedOids.get(dotted);
  if (encoded) return encoded;
  const arcs = dotted.split('.').map(Number);
  const bytes: number[] = [];
  const first = arcs[0]! * 40 + arcs[1]!;
  for (const arc of [first, ...arcs.slice(2)]) {
    const base128 = [arc & 0x7f];
    for (let n = Math.floor(arc / 128); n > 0; n = Math.floor(n / 128)) base128.unshift(0x80 | (n & 0x7f));
    bytes.push(...base128);
  }
  encoded = tlv(tags.oid, Buffer.from(bytes));
  encodedOids.set(dotted, encoded);
  return encoded;
}

/** An INTEGER from the big-endian bytes of a non-negative number. */
function unsignedInteger(bytes: Uint8Array): Buffer {
  let start = 0;
  while (start < bytes.length - 1 && bytes[start] === 0) start++;
  const value = bytes.subarray(start);
  if (value.length === 0) return Buffer.of(tags.integer, 1, 0);
  return value[0]! & 0x80 ? tlv(tags.integer, Buffer.of(0), value) : tlv(tags.integer, value);
}

function smallInteger(n: number, tag = tags.integer): Buffer {
  if (!Number.isSafeInteger(n) || n < 0) throw new PkiError('invalid_argument', `not a non-negative integer: ${n}`);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  if (bytes.length === 0 || bytes[0]! & 0x80) bytes.unshift(0);
  return tlv(tag, Buffer.from(bytes));
}

/** RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050; always in seconds, always Z. */
function time(date: Date): Buffer {
  const iso = date.toISOString(); // YYYY-MM-DDTHH:MM:SS.sssZ
  const digits = iso.slice(0, 4) + iso.slice(5, 7) + iso.slice(8, 10) + iso.slice(11, 13) + iso.slice(14, 16) + iso.slice(17, 19) + 'Z';
  const year = date.getUTCFullYear();
  if (year < 1950 || year > 9999) throw new PkiError('invalid_argument', `date out of range: ${iso}`);
  return year < 2050 ? tlv(tags.utcTime, Buffer.from(digits.slice(2), 'latin1')) : tlv(tags.generalizedTime, Buffer.from(digits, 'latin1'));
}

const wholeSeconds = (ms: number) => new Date(Math.floor(ms / 1000) * 1000);

function extension(id: string, critical: boolean, value: Uint8Array): Buffer {
  return sequence(oid(id), critical ? derTrue : empty, octetString(value));
}

/** A Name of RelativeDistinguishedNames of one attribute each, in the order given (most significant first). */
function distinguishedName(attributes: [type: string, value: string][]): Buffer {
  return sequence(...attributes.map(([type, value]) => tlv(tags.set, sequence(oid(type), utf8String(value)))));
}

const ecdsaWithSha256 = sequence(oid(oids.ecdsaWithSha256)); // RFC 5758 §3.2: parameters absent

// KeyUsage bits, RFC 5280 §4.2.1.3; DER drops the trailing zero bits and counts them as unused.
const keyUsageDigitalSignature = bitString(Buffer.of(0x80), 7);
const keyUsageCertAndCrlSign = bitString(Buffer.of(0x06), 1); // keyCertSign (5), cRLSign (6)

function basicConstraints(ca: boolean, pathLength?: number): Buffer {
  return extension(oids.basicConstraints, true, ca ? sequence(derTrue, ...(pathLength === undefined ? [] : [smallInteger(pathLength)])) : sequence());
}

const subjectKeyIdentifier = (keyId: Uint8Array) => extension(oids.subjectKeyIdentifier, false, octetString(keyId));
const authorityKeyIdentifier = (keyId: Uint8Array) => extension(oids.authorityKeyIdentifier, false, sequence(tlv(0x80, keyId)));

// ---------------------------------------------------------------------------------------------------
// DER reading

class DerError extends Error {}

interface Der {
  tag: number;
  /** where the element's tag is */
  offset: number;
  /** where its contents begin and end */
  start: number;
  end: number;
}

function readDer(bytes: Uint8Array, offset: number, limit = bytes.length): Der {
  if (offset + 2 > limit) throw new DerError('truncated');
  const tag = bytes[offset]!;
  if ((tag & 0x1f) === 0x1f) throw new DerError('multi-byte tags are not used here');
  let length = bytes[offset + 1]!;
  let start = offset + 2;
  if (length & 0x80) {
    const count = length & 0x7f;
    // X.690 §10.1: DER has no indefinite length; four length bytes are far beyond anything read here
    if (count === 0 || count > 4) throw new DerError('unsupported length');
    if (start + count > limit) throw new DerError('truncated');
    length = 0;
    for (let i = 0; i < count; i++) length = length * 256 + bytes[start + i]!;
    if (length < 0x80 || bytes[start] === 0) throw new DerError('length not minimal');
    start += count;
  }
  const end = start + length;
  if (end > limit) throw new DerError('truncated');
  return { tag, offset, start, end };
}

function expect(bytes: Uint8Array, offset: number, tag: number, limit?: number): Der {
  const node = readDer(bytes, offset, limit);
  if (node.tag !== tag) throw new DerError(`expected tag 0x${tag.toString(16)}, found 0x${node.tag.toString(16)}`);
  return node;
}

function childrenOf(bytes: Uint8Array, parent: Der): Der[] {
  const children: Der[] = [];
  for (let at = parent.start; at < parent.end; ) {
    const child = readDer(bytes, at, parent.end);
    children.push(child);
    at = child.end;
  }
  return children;
}

const contents = (bytes: Uint8Array, node: Der) => bytes.subarray(node.start, node.end);
const whole = (bytes: Uint8Array, node: Der) => bytes.subarray(node.offset, node.end);

function readOid(bytes: Uint8Array, node: Der | undefined): string {
  if (!node || node.tag !== tags.oid || node.end === node.start) throw new DerError('expected an OBJECT IDENTIFIER');
  const arcs: number[] = [];
  let value = 0;
  for (let i = node.start; i < node.end; i++) {
    const b = bytes[i]!;
    value = value * 128 + (b & 0x7f);
    if (value > Number.MAX_SAFE_INTEGER) throw new DerError('OID arc too large');
    if (!(b & 0x80)) {
      if (arcs.length === 0) arcs.push(value < 80 ? Math.floor(value / 40) : 2, value < 80 ? value % 40 : value - 80);
      else arcs.push(value);
      value = 0;
    } else if (i === node.end - 1) throw new DerError('OID truncated');
  }
  return arcs.join('.');
}

function readString(bytes: Uint8Array, node: Der): string {
  const raw = Buffer.from(contents(bytes, node));
  switch (node.tag) {
    case tags.utf8String:
      return raw.toString('utf8');
    case tags.printableString:
    case tags.ia5String:
    case tags.teletexString:
      return raw.toString('latin1');
    case tags.bmpString:
      return raw.swap16().toString('utf16le');
    case tags.universalString: {
      let text = '';
      for (let i = 0; i + 4 <= raw.length; i += 4) text += String.fromCodePoint(raw.readUInt32BE(i));
      return text;
    }
    default:
      throw new DerError(`not a string type: 0x${node.tag.toString(16)}`);
  }
}

/** The value of the first attribute of `type` in a Name. */
function nameAttribute(bytes: Uint8Array, name: Der, type: string): string | undefined {
  for (const rdn of childrenOf(bytes, name)) {
    for (const pair of childrenOf(bytes, rdn)) {
      const [attributeType, value] = childrenOf(bytes, pair);
      if (attributeType && value && readOid(bytes, attributeType) === type) return readString(bytes, value);
    }
  }
  return undefined;
}

function readTime(bytes: Uint8Array, node: Der): Date {
  const text = Buffer.from(contents(bytes, node)).toString('latin1');
  const match = node.tag === tags.utcTime ? /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(text) : node.tag === tags.generalizedTime ? /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(text) : null;
  if (!match) throw new DerError(`unreadable time ${text}`);
  let year = Number(match[1]);
  if (node.tag === tags.utcTime) year += year < 50 ? 2000 : 1900; // RFC 5280 §4.1.2.5.1
  return new Date(Date.UTC(year, Number(match[2]) - 1, Number(match[3]), Number(match[4]), Number(match[5]), Number(match[6])));
}

/** The hex of an INTEGER's magnitude, as serial numbers are written. */
function integerHex(bytes: Uint8Array, node: Der): string {
  if (node.tag !== tags.integer || node.end === node.start) throw new DerError('expected an INTEGER');
  let start = node.start;
  while (start < node.end - 1 && bytes[start] === 0) start++;
  return Buffer.from(bytes.subarray(start, node.end)).toString('hex');
}

interface ParsedExtension {
  id: string;
  critical: boolean;
  value: Der;
}

function readExtensions(bytes: Uint8Array, extensions: Der): ParsedExtension[] {
  return childrenOf(bytes, extensions).map((ext) => {
    const parts = childrenOf(bytes, ext);
    const id = readOid(bytes, parts[0]);
    const critical = parts.length === 3 && parts[1]!.tag === tags.boolean && bytes[parts[1]!.start] !== 0;
    const value = parts[parts.length - 1];
    if (!value || value.tag !== tags.octetString) throw new DerError('extension without a value');
    return { id, critical, value };
  });
}

function isCaConstraint(bytes: Uint8Array, extensionValue: Der): boolean {
  const constraints = expect(bytes, extensionValue.start, tags.sequence, extensionValue.end);
  const first = childrenOf(bytes, constraints)[0];
  return first !== undefined && first.tag === tags.boolean && bytes[first.start] !== 0;
}

function hasKeyUsageBit(bytes: Uint8Array, extensionValue: Der, bit: number): boolean {
  const usage = expect(bytes, extensionValue.start, tags.bitString, extensionValue.end);
  const index = usage.start + 1 + (bit >> 3);
  return index < usage.end && (bytes[index]! & (0x80 >> (bit & 7))) !== 0;
}

// ---------------------------------------------------------------------------------------------------
// PEM

const pemPattern = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/;

function decodeBase64(text: string): Buffer {
  const compact = text.replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(compact) || compact.length % 4 === 1) throw new DerError('not base64');
  return Buffer.from(compact, 'base64');
}

/** The DER of the first PEM block in `pem`. */
export function pemToDer(pem: string): Uint8Array {
  const match = pemPattern.exec(pem);
  if (!match) throw new PkiError('invalid_argument', 'no PEM block found');
  try {
    return decodeBase64(match[2]!);
  } catch {
    throw new PkiError('invalid_argument', `the ${match[1]} PEM block is not base64`);
  }
}

function pemBlock(der: Uint8Array, label: string): string {
  const base64 = Buffer.from(der).toString('base64');
  const lines: string[] = [];
  for (let i = 0; i < base64.length; i += 64) lines.push(base64.slice(i, i + 64)); // RFC 7468 §2
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

export function derToPem(der: Uint8Array, label: 'CERTIFICATE' | 'X509 CRL' | 'PKCS7' | 'CERTIFICATE REQUEST'): string {
  return pemBlock(der, label);
}

const toDer = (pemOrDer: string | Uint8Array) => (typeof pemOrDer === 'string' ? pemToDer(pemOrDer) : pemOrDer);
const sha256Hex = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

// ---------------------------------------------------------------------------------------------------
// Keys

const ecdsaP256 = { name: 'ECDSA', namedCurve: 'P-256' } as const;

// Every uncompressed P-256 SubjectPublicKeyInfo begins with these bytes: SEQUENCE { SEQUENCE {
// id-ecPublicKey, prime256v1 }, BIT STRING (65 bytes: 0x04 ‖ X ‖ Y) }.
const p256SpkiPrefix = Buffer.from('3059301306072a8648ce3d020106082a8648ce3d030107034200', 'hex');
const p256SpkiLength = p256SpkiPrefix.length + 65;

function assertP256Spki(spki: Uint8Array): void {
  if (spki.length !== p256SpkiLength || !p256SpkiPrefix.equals(spki.subarray(0, p256SpkiPrefix.length)) || spki[p256SpkiPrefix.length] !== 0x04) {
    throw new PkiError('key_type', 'the public key is not an uncompressed EC P-256 SubjectPublicKeyInfo');
  }
}

/** RFC 7093 §2 method 1: the leftmost 160 bits of the SHA-256 of the subjectPublicKey bits. */
function keyIdentifier(spki: Uint8Array): Buffer {
  const outer = expect(spki, 0, tags.sequence);
  const [, key] = childrenOf(spki, outer);
  if (!key || key.tag !== tags.bitString) throw new DerError('SubjectPublicKeyInfo without a key');
  return createHash('sha256').update(spki.subarray(key.start + 1, key.end)).digest().subarray(0, 20);
}

/** An ECDSA P-256 key pair, extractable: for the platform's own keys, never for devices. */
export async function generateKeyPair(): Promise<CryptoKeyPair> {
  return crypto.subtle.generateKey(ecdsaP256, true, ['sign', 'verify']);
}

/** The SubjectPublicKeyInfo DER of a public key, or of the public half of an extractable private key. */
export async function spkiOf(key: CryptoKey): Promise<Uint8Array> {
  if (key.type === 'public') return new Uint8Array(await crypto.subtle.exportKey('spki', key));
  return createPublicKey(KeyObject.from(key)).export({ type: 'spki', format: 'der' });
}

/** PKCS#8 PEM of an extractable private key (for the key file handed to node:tls). */
export async function privateKeyPem(key: CryptoKey): Promise<string> {
  return pemBlock(new Uint8Array(await crypto.subtle.exportKey('pkcs8', key)), 'PRIVATE KEY');
}

function assertP256(key: KeyObject, what: string): void {
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw new PkiError('key_type', `${what} is not an EC P-256 key`);
  }
}

const signingKey = (key: KeyObject) => key.toCryptoKey(ecdsaP256, true, ['sign']);
const verifyingKey = (key: KeyObject) => key.toCryptoKey(ecdsaP256, true, ['verify']);

// ---------------------------------------------------------------------------------------------------
// Issuers: what signing with a CA needs, read once per CaKeyPair

interface Issuer {
  certificatePem: string;
  privateKey: CryptoKey;
  /** the CA certificate's subject, byte for byte: the issuer field of what it signs (RFC 5280 §4.1.2.4) */
  name: Buffer;
  keyId: Buffer;
  notAfter: Date;
  sign(tbs: Uint8Array): Promise<Buffer>;
}

const issuers = new WeakMap<CaKeyPair, Issuer>();

function issuerOf(ca: CaKeyPair): Issuer {
  const cached = issuers.get(ca);
  if (cached && cached.certificatePem === ca.certificatePem && cached.privateKey === ca.privateKey) return cached;
  const issuer = readIssuer(ca);
  issuers.set(ca, issuer);
  return issuer;
}

function readIssuer(ca: CaKeyPair): Issuer {
  const der = pemToDer(ca.certificatePem);
  let parsed: ParsedCertificate;
  try {
    parsed = parseCertificate(der);
  } catch (error) {
    throw new PkiError('certificate_malformed', `the CA certificate is unreadable: ${(error as Error).message}`);
  }
  const { privateKey } = ca;
  const algorithm = privateKey.algorithm as EcKeyAlgorithm;
  if (privateKey.type !== 'private' || algorithm.name !== 'ECDSA' || algorithm.namedCurve !== 'P-256') {
    throw new PkiError('key_type', 'the CA key is not an ECDSA P-256 private key');
  }
  const skid = parsed.extensions.find((e) => e.id === oids.subjectKeyIdentifier);
  const keyId = skid ? Buffer.from(contents(der, expect(der, skid.value.start, tags.octetString, skid.value.end))) : keyIdentifier(parsed.spki);
  // node:crypto signs synchronously with the DER signature encoding certificates use; WebCrypto only
  // for a key it will not hand over (KeyObject.from of a non-extractable key is deprecated)
  const keyObject = privateKey.extractable ? KeyObject.from(privateKey) : undefined;
  const sign = keyObject
    ? async (tbs: Uint8Array) => signBytes('sha256', tbs, { key: keyObject, dsaEncoding: 'der' })
    : async (tbs: Uint8Array) => ecdsaSignatureDer(new Uint8Array(await crypto.subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, privateKey, tbs)));
  return {
    certificatePem: ca.certificatePem,
    privateKey,
    name: Buffer.from(whole(der, parsed.subject)),
    keyId,
    notAfter: parsed.notAfter,
    sign,
  };
}

/** IEEE P1363 r ‖ s (WebCrypto's form) to the Ecdsa-Sig-Value SEQUENCE of RFC 5480 §2.2 / RFC 3279 §2.2.3. */
function ecdsaSignatureDer(p1363: Uint8Array): Buffer {
  const half = p1363.length / 2;
  return sequence(unsignedInteger(p1363.subarray(0, half)), unsignedInteger(p1363.subarray(half)));
}

/** 128 random bits, positive and without a leading zero byte, so the hex is always 32 digits (RFC 5280 §4.1.2.2). */
function randomSerial(): Buffer {
  const serial = randomBytes(16);
  while (serial[0] === 0) serial[0] = randomBytes(1)[0]!;
  return serial;
}

interface CertificateSpec {
  subject: Buffer;
  spki: Uint8Array;
  notBefore: Date;
  notAfter: Date;
  extensions: Buffer[];
}

/** RFC 5280 §4.1: a v3 certificate with a fresh serial, signed by `issuer` (for a root, by its own key). */
async function signCertificate(issuer: Pick<Issuer, 'name' | 'sign'>, spec: CertificateSpec): Promise<IssuedCertificate> {
  if (spec.notAfter.getTime() <= spec.notBefore.getTime()) throw new PkiError('invalid_argument', 'the validity ends before it begins');
  const serial = randomSerial();
  const tbs = sequence(
    explicit(0, smallInteger(2)), // v3
    unsignedInteger(serial),
    ecdsaWithSha256,
    issuer.name,
    sequence(time(spec.notBefore), time(spec.notAfter)),
    spec.subject,
    spec.spki,
    explicit(3, sequence(...spec.extensions)),
  );
  const signature = await issuer.sign(tbs);
  const der = sequence(tbs, ecdsaWithSha256, bitString(signature));
  return {
    pem: pemBlock(der, 'CERTIFICATE'),
    der,
    serial: serial.toString('hex'),
    fingerprint: sha256Hex(der),
    notBefore: spec.notBefore,
    notAfter: spec.notAfter,
  };
}

function validity(now: Date | undefined, days: number, cap?: Date): { notBefore: Date; notAfter: Date } {
  if (!(days > 0)) throw new PkiError('invalid_argument', `validityDays must be positive, got ${days}`);
  const at = (now ?? new Date()).getTime();
  const notBefore = wholeSeconds(at - defaults.clockSkewMs);
  let notAfter = wholeSeconds(at + days * dayMs);
  // a certificate outliving its issuer fails path validation from then on (RFC 5280 §6.1.3 (a)(2))
  if (cap && notAfter.getTime() > cap.getTime()) notAfter = cap;
  return { notBefore, notAfter };
}

function caKeyPair(issued: IssuedCertificate, keys: CryptoKeyPair): CaKeyPair {
  return { certificatePem: issued.pem, privateKey: keys.privateKey, publicKey: keys.publicKey };
}

/** The platform root: self-signed, CA with pathLen 1 (root → issuing CA → device), keyCertSign and cRLSign. */
export async function generateRoot(opts: { commonName: string; validityDays?: number; now?: Date }): Promise<CaKeyPair> {
  const keys = await generateKeyPair();
  const spki = await spkiOf(keys.publicKey);
  const keyId = keyIdentifier(spki);
  const name = distinguishedName([[oids.commonName, opts.commonName]]);
  const signer = KeyObject.from(keys.privateKey);
  const issued = await signCertificate(
    { name, sign: async (tbs) => signBytes('sha256', tbs, { key: signer, dsaEncoding: 'der' }) },
    {
      subject: name,
      spki,
      ...validity(opts.now, opts.validityDays ?? defaults.rootValidityDays),
      extensions: [basicConstraints(true, 1), extension(oids.keyUsage, true, keyUsageCertAndCrlSign), subjectKeyIdentifier(keyId), authorityKeyIdentifier(keyId)],
    },
  );
  return caKeyPair(issued, keys);
}

/** An organization's issuing CA: CA with pathLen 0, keyCertSign and cRLSign, subject O = orgId, CN = commonName. */
export async function generateIssuing(root: CaKeyPair, opts: { orgId: string; commonName: string; validityDays?: number; now?: Date }): Promise<CaKeyPair> {
  const issuer = issuerOf(root);
  const keys = await generateKeyPair();
  const spki = await spkiOf(keys.publicKey);
  const issued = await signCertificate(issuer, {
    subject: distinguishedName([
      [oids.organization, opts.orgId],
      [oids.commonName, opts.commonName],
    ]),
    spki,
    ...validity(opts.now, opts.validityDays ?? defaults.issuingValidityDays, issuer.notAfter),
    extensions: [
      basicConstraints(true, 0),
      extension(oids.keyUsage, true, keyUsageCertAndCrlSign),
      subjectKeyIdentifier(keyIdentifier(spki)),
      authorityKeyIdentifier(issuer.keyId),
    ],
  });
  return caKeyPair(issued, keys);
}

/** The SAN URI naming a device; the ids are percent-encoded so that a ':' in one cannot shift the others. */
export function deviceUri(orgId: string, deviceId: string): string {
  return `urn:fleetwire:org:${encodeURIComponent(orgId)}:device:${encodeURIComponent(deviceId)}`;
}

/**
 * A device certificate: subject O = orgId, CN = deviceId; SAN URI urn:fleetwire:org:<orgId>:device:<deviceId>;
 * EKU clientAuth; KU digitalSignature (critical); not a CA; valid from 5 minutes ago for validityDays
 * (90 by default), never past the issuer's notAfter.
 */
export async function issueDeviceCertificate(issuer: CaKeyPair, spki: Uint8Array, opts: { orgId: string; deviceId: string; validityDays?: number; now?: Date }): Promise<IssuedCertificate> {
  const ca = issuerOf(issuer);
  assertP256Spki(spki);
  if (!opts.orgId || !opts.deviceId) throw new PkiError('invalid_argument', 'orgId and deviceId are required');
  return signCertificate(ca, {
    subject: distinguishedName([
      [oids.organization, opts.orgId],
      [oids.commonName, opts.deviceId],
    ]),
    spki,
    ...validity(opts.now, opts.validityDays ?? defaults.deviceValidityDays, ca.notAfter),
    extensions: [
      basicConstraints(false),
      extension(oids.keyUsage, true, keyUsageDigitalSignature),
      extension(oids.extKeyUsage, false, sequence(oid(oids.clientAuth))),
      extension(oids.subjectAltName, false, sequence(tlv(0x86, Buffer.from(deviceUri(opts.orgId, opts.deviceId), 'latin1')))), // [6] uniformResourceIdentifier
      subjectKeyIdentifier(keyIdentifier(spki)),
      authorityKeyIdentifier(ca.keyId),
    ],
  });
}

/** The 4 or 16 bytes of an IPv4 or IPv6 address, as iPAddress GeneralNames hold them (RFC 5280 §4.2.1.6). */
function ipAddressBytes(address: string): Buffer {
  if (isIPv4(address)) return Buffer.from(address.split('.').map(Number));
  if (!isIPv6(address)) throw new PkiError('invalid_argument', `not an IP address: ${address}`);
  let text = address.replace(/%.*$/, ''); // a zone index names an interface, not part of the address
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted) {
    const [a, b, c, d] = dotted[1]!.split('.').map(Number) as [number, number, number, number];
    text = text.slice(0, dotted.index) + ((a << 8) | b).toString(16) + ':' + ((c << 8) | d).toString(16);
  }
  const [head, tail] = text.split('::') as [string, string | undefined];
  const groups = (part: string | undefined) => (part ? part.split(':') : []);
  const left = groups(head);
  const right = groups(tail);
  const all = tail === undefined ? left : [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right];
  const bytes = Buffer.alloc(16);
  all.forEach((group, i) => bytes.writeUInt16BE(parseInt(group, 16), i * 2));
  return bytes;
}

/**
 * A listener certificate, for a key of the platform's own: EKU serverAuth (a device certificate has
 * clientAuth), SAN dNSName and iPAddress entries, CN = the first name, KU digitalSignature (ECDHE
 * key exchange signs, RFC 8422 §5.4); 365 days by default, at most 397, never past the issuer.
 * Signed by the root or an issuing CA.
 */
export async function issueServerCertificate(issuer: CaKeyPair, spki: Uint8Array, opts: { dnsNames: string[]; ipAddresses?: string[]; validityDays?: number; now?: Date }): Promise<IssuedCertificate> {
  const ca = issuerOf(issuer);
  assertP256Spki(spki);
  const ipAddresses = opts.ipAddresses ?? [];
  const firstName = opts.dnsNames[0] ?? ipAddresses[0];
  if (firstName === undefined) throw new PkiError('invalid_argument', 'a server certificate needs at least one DNS name or IP address');
  const days = opts.validityDays ?? defaults.serverValidityDays;
  if (days > defaults.serverMaxValidityDays) throw new PkiError('invalid_argument', `a server certificate lasts at most ${defaults.serverMaxValidityDays} days, not ${days}`);
  for (const name of opts.dnsNames) {
    if (!/^[\x21-\x7e]+$/.test(name)) throw new PkiError('invalid_argument', `not a DNS name: ${JSON.stringify(name)}`);
  }
  const names = [...opts.dnsNames.map((name) => ia5StringAs(0x82, name)), ...ipAddresses.map((address) => tlv(0x87, ipAddressBytes(address)))]; // [2] dNSName, [7] iPAddress
  return signCertificate(ca, {
    subject: distinguishedName([[oids.commonName, firstName]]),
    spki,
    ...validity(opts.now, days, ca.notAfter),
    extensions: [
      basicConstraints(false),
      extension(oids.keyUsage, true, keyUsageDigitalSignature),
      extension(oids.extKeyUsage, false, sequence(oid(oids.serverAuth))),
      extension(oids.subjectAltName, false, sequence(...names)),
      subjectKeyIdentifier(keyIdentifier(spki)),
      authorityKeyIdentifier(ca.keyId),
    ],
  });
}

/** An IA5String under an IMPLICIT context tag. */
function ia5StringAs(tag: number, text: string): Buffer {
  const encoded = ia5String(text);
  encoded[0] = tag;
  return encoded;
}

// ---------------------------------------------------------------------------------------------------
// CSRs (RFC 2986 §4)

interface ParsedCsr {
  info: Uint8Array;
  spki: Uint8Array;
  keyAlgorithm: string;
  curve?: string;
  signatureAlgorithm: string;
  signature: Uint8Array;
  subject: Der;
  requestedExtensions: ParsedExtension[];
  bytes: Uint8Array;
}

function parseCsr(bytes: Uint8Array): ParsedCsr {
  const request = expect(bytes, 0, tags.sequence);
  if (request.end !== bytes.length) throw new DerError('bytes after the request');
  const [infoNode, algorithmNode, signatureNode, ...rest] = childrenOf(bytes, request);
  if (!infoNode || !algorithmNode || !signatureNode || rest.length) throw new DerError('not a CertificationRequest');
  if (infoNode.tag !== tags.sequence || algorithmNode.tag !== tags.sequence || signatureNode.tag !== tags.bitString) throw new DerError('not a CertificationRequest');
  const [version, subject, spkiNode, attributes] = childrenOf(bytes, infoNode);
  if (!version || !subject || !spkiNode || version.tag !== tags.integer || subject.tag !== tags.sequence || spkiNode.tag !== tags.sequence) {
    throw new DerError('not a CertificationRequestInfo');
  }
  if (integerHex(bytes, version) !== '00') throw new DerError('unknown CSR version'); // RFC 2986 §4.1: v1 is 0
  const [keyAlgorithmNode] = childrenOf(bytes, spkiNode);
  if (!keyAlgorithmNode || keyAlgorithmNode.tag !== tags.sequence) throw new DerError('SubjectPublicKeyInfo without an algorithm');
  const [keyOid, keyParameters] = childrenOf(bytes, keyAlgorithmNode);
  const keyAlgorithm = readOid(bytes, keyOid);
  const curve = keyParameters?.tag === tags.oid ? readOid(bytes, keyParameters) : undefined;
  const requestedExtensions: ParsedExtension[] = [];
  if (attributes) {
    if (attributes.tag !== 0xa0) throw new DerError('attributes must be [0] IMPLICIT SET');
    for (const attribute of childrenOf(bytes, attributes)) {
      const [type, values] = childrenOf(bytes, attribute);
      if (!type || !values || values.tag !== tags.set) throw new DerError('malformed attribute');
      const id = readOid(bytes, type);
      if (id !== oids.extensionRequest && id !== oids.msExtensionRequest) continue;
      for (const extensions of childrenOf(bytes, values)) {
        if (extensions.tag !== tags.sequence) throw new DerError('extensionRequest is not Extensions');
        requestedExtensions.push(...readExtensions(bytes, extensions));
      }
    }
  }
  const signatureBits = contents(bytes, signatureNode);
  if (signatureBits[0] !== 0) throw new DerError('signature with unused bits');
  return {
    info: whole(bytes, infoNode),
    spki: whole(bytes, spkiNode),
    keyAlgorithm,
    curve,
    signatureAlgorithm: readOid(bytes, childrenOf(bytes, algorithmNode)[0]),
    signature: signatureBits.subarray(1),
    subject,
    requestedExtensions,
    bytes,
  };
}

/** PEM, base64 DER (EST's form, RFC 7030 §4.2.1, with or without line breaks), or DER; bytes may be any of them. */
function csrBytes(input: string | Uint8Array, maxBytes: number): Uint8Array {
  if (typeof input !== 'string') {
    if (input[0] === tags.sequence) return input;
    input = Buffer.from(input).toString('latin1');
  }
  // base64 grows by 4/3, PEM adds a line break per 64 characters and its armour: anything past twice
  // the limit is too large whatever it holds, and is refused before it is decoded
  if (input.length > maxBytes * 2 + 200) throw new CsrError('csr_too_large', `the request is over ${maxBytes} bytes`);
  const pem = pemPattern.exec(input);
  if (pem && pem[1] !== 'CERTIFICATE REQUEST' && pem[1] !== 'NEW CERTIFICATE REQUEST') throw new DerError(`a ${pem[1]} is not a certificate request`);
  return decodeBase64(pem ? pem[2]! : input);
}

/**
 * A PKCS#10 request of a device's own key (RFC 2986 §4), signed with it: for the device side (the
 * device SDK, benches and tests), since the platform itself never makes nor holds a device key.
 */
export function createCsr(privateKey: KeyObject, subject: { commonName?: string; serialNumber?: string }): string {
  assertP256(privateKey, 'a device key');
  const spki = createPublicKey(privateKey).export({ type: 'spki', format: 'der' });
  const name = distinguishedName([...(subject.serialNumber !== undefined ? [[oids.serialNumber, subject.serialNumber] as [string, string]] : []), ...(subject.commonName !== undefined ? [[oids.commonName, subject.commonName] as [string, string]] : [])]);
  // version 0, the subject, the key, and no attributes ([0] IMPLICIT SET, empty)
  const info = sequence(smallInteger(0), name, spki, tlv(0xa0));
  const signature = signBytes('sha256', info, { key: privateKey, dsaEncoding: 'der' });
  return pemBlock(sequence(info, ecdsaWithSha256, bitString(signature)), 'CERTIFICATE REQUEST');
}

/**
 * Reads a PKCS#10 CSR and refuses it unless its key is EC P-256, its signature verifies with that key
 * (proof of possession), it is at most maxBytes (4 KiB by default) and it asks for no CA rights. The
 * extensions a CSR requests are otherwise ignored: certificates carry only what the platform decides.
 */
export async function verifyCsr(input: string | Uint8Array, opts: { maxBytes?: number } = {}): Promise<VerifiedCsr> {
  const maxBytes = opts.maxBytes ?? defaults.csrMaxBytes;
  let csr: ParsedCsr;
  try {
    const bytes = csrBytes(input, maxBytes);
    if (bytes.length > maxBytes) throw new CsrError('csr_too_large', `the request is ${bytes.length} bytes, over ${maxBytes}`);
    csr = parseCsr(bytes);
  } catch (error) {
    if (error instanceof CsrError) throw error;
    throw new CsrError('csr_malformed', `not a PKCS#10 certificate request: ${(error as Error).message}`);
  }
  if (csr.keyAlgorithm !== oids.ecPublicKey) throw new CsrError('csr_key_type', `the key must be EC P-256, not ${csr.keyAlgorithm}`);
  if (csr.curve !== oids.p256) throw new CsrError('csr_curve', `the key must be on P-256, not ${csr.curve ?? 'explicit parameters'}`);
  let key: KeyObject;
  try {
    key = createPublicKey({ key: Buffer.from(csr.spki), format: 'der', type: 'spki' });
  } catch (error) {
    throw new CsrError('csr_malformed', `unreadable public key: ${(error as Error).message}`);
  }
  const hash = signatureHashes[csr.signatureAlgorithm];
  if (!hash) throw new CsrError('csr_signature', `unsupported signature algorithm ${csr.signatureAlgorithm}`);
  let signed = false;
  try {
    signed = verifyBytes(hash, csr.info, { key, dsaEncoding: 'der' }, csr.signature);
  } catch {
    signed = false; // an Ecdsa-Sig-Value that does not parse is as wrong as one that does not verify
  }
  if (!signed) throw new CsrError('csr_signature', 'the request is not signed by the key it carries');
  let subjectCommonName: string | undefined;
  let serialNumber: string | undefined;
  try {
    for (const ext of csr.requestedExtensions) {
      if (ext.id === oids.basicConstraints && isCaConstraint(csr.bytes, ext.value)) throw new CsrError('csr_ca_requested', 'the request asks for basicConstraints cA=true');
      if (ext.id === oids.keyUsage && (hasKeyUsageBit(csr.bytes, ext.value, 5) || hasKeyUsageBit(csr.bytes, ext.value, 6))) {
        throw new CsrError('csr_ca_requested', 'the request asks for keyCertSign or cRLSign');
      }
    }
    subjectCommonName = nameAttribute(csr.bytes, csr.subject, oids.commonName);
    serialNumber = nameAttribute(csr.bytes, csr.subject, oids.serialNumber);
  } catch (error) {
    if (error instanceof CsrError) throw error;
    throw new CsrError('csr_malformed', `unreadable request contents: ${(error as Error).message}`);
  }
  // the key as the platform writes it (an uncompressed P-256 point): as sent when it is so already
  const sent = Buffer.from(csr.spki);
  const spki = sent.length === p256SpkiLength && p256SpkiPrefix.equals(sent.subarray(0, p256SpkiPrefix.length)) && sent[p256SpkiPrefix.length] === 0x04 ? sent : key.export({ type: 'spki', format: 'der' });
  return { spki, fingerprint: sha256Hex(spki), subjectCommonName, serialNumber };
}

// ---------------------------------------------------------------------------------------------------
// CRLs (RFC 5280 §5)

const reasonCodes: Record<RevocationReason, number> = { unspecified: 0, keyCompromise: 1, superseded: 4, cessationOfOperation: 5, certificateHold: 6 };

function serialInteger(serial: string): Buffer {
  if (!/^[0-9a-f]{1,40}$/i.test(serial)) throw new PkiError('invalid_argument', `not a hex serial: ${serial}`);
  return unsignedInteger(Buffer.from(serial.length % 2 ? `0${serial}` : serial, 'hex'));
}

/** A v2 CRL signed by `issuer`: thisUpdate now, nextUpdate a day later by default, a CRL number and the issuer's key identifier. */
export async function createCrl(
  issuer: CaKeyPair,
  revoked: { serial: string; revokedAt: Date; reason?: RevocationReason }[],
  opts: { crlNumber: number; now?: Date; nextUpdateHours?: number },
): Promise<{ pem: string; der: Uint8Array }> {
  const ca = issuerOf(issuer);
  const at = (opts.now ?? new Date()).getTime();
  const hours = opts.nextUpdateHours ?? defaults.crlNextUpdateHours;
  if (!(hours > 0)) throw new PkiError('invalid_argument', `nextUpdateHours must be positive, got ${hours}`);
  const entries = revoked.map(({ serial, revokedAt, reason }) =>
    sequence(
      serialInteger(serial),
      time(wholeSeconds(revokedAt.getTime())),
      // RFC 5280 §5.3.1: the reason code SHOULD be absent rather than unspecified (0)
      ...(reason && reason !== 'unspecified' ? [sequence(extension(oids.reasonCode, false, smallInteger(reasonCodes[reason], tags.enumerated)))] : []),
    ),
  );
  const tbs = sequence(
    smallInteger(1), // v2
    ecdsaWithSha256,
    ca.name,
    time(wholeSeconds(at)),
    time(wholeSeconds(at + hours * 3_600_000)),
    ...(entries.length ? [sequence(...entries)] : []), // §5.1.2.6: absent when nothing is revoked
    explicit(0, sequence(authorityKeyIdentifier(ca.keyId), extension(oids.crlNumber, false, smallInteger(opts.crlNumber)))),
  );
  const der = sequence(tbs, ecdsaWithSha256, bitString(await ca.sign(tbs)));
  return { pem: pemBlock(der, 'X509 CRL'), der };
}

// ---------------------------------------------------------------------------------------------------
// OCSP (RFC 6960): an issuing CA answers for the certificates it issued, signing the answers itself

const ocspOids = { basic: '1.3.6.1.5.5.7.48.1.1', nonce: '1.3.6.1.5.5.7.48.1.2', sha1: '1.3.14.3.2.26', sha256: '2.16.840.1.101.3.4.2.1' };
const ocspHashes: Record<string, 'sha1' | 'sha256'> = { [ocspOids.sha1]: 'sha1', [ocspOids.sha256]: 'sha256' };
/** Certificates one request may ask about. */
export const maxOcspQueries = 20;

/** One certificate a request asks about (RFC 6960 §4.1.1 CertID). */
export interface OcspQuery {
  /** The serial, lowercase hex without leading zero bytes (as the platform writes its serials). */
  serial: string;
  /** The CertID as sent: the answer names it byte for byte. */
  certId: Buffer;
  /** sha1 or sha256, or undefined for a hash the responder does not know (answered unknown). */
  hash: 'sha1' | 'sha256' | undefined;
  issuerNameHash: Buffer;
  issuerKeyHash: Buffer;
}

export type OcspAnswer = { status: 'good' } | { status: 'revoked'; revokedAt: Date; reason?: RevocationReason } | { status: 'unknown' };

/** GeneralizedTime in whole seconds (OCSP times are GeneralizedTime whatever the year, RFC 6960 §4.2.1). */
function generalizedTime(date: Date): Buffer {
  const iso = wholeSeconds(date.getTime()).toISOString();
  return tlv(tags.generalizedTime, Buffer.from(iso.slice(0, 4) + iso.slice(5, 7) + iso.slice(8, 10) + iso.slice(11, 13) + iso.slice(14, 16) + iso.slice(17, 19) + 'Z', 'latin1'));
}

/** The certificates an OCSPRequest asks about and its nonce extension (DER, echoed in the answer); PkiError `ocsp_malformed` otherwise. Signed requests are read, their signature not checked (RFC 6960 §4.1.2: optional). */
export function readOcspRequest(der: Uint8Array): { queries: OcspQuery[]; nonce?: Buffer } {
  try {
    const request = expect(der, 0, tags.sequence);
    if (request.end !== der.length) throw new DerError('bytes after the request');
    const [tbs] = childrenOf(der, request);
    if (!tbs || tbs.tag !== tags.sequence) throw new DerError('no TBSRequest');
    const fields = childrenOf(der, tbs).filter((f) => f.tag !== 0xa0 && f.tag !== 0xa1); // version, requestorName
    const list = fields[0];
    if (!list || list.tag !== tags.sequence) throw new DerError('no requestList');
    const requests = childrenOf(der, list);
    if (requests.length === 0 || requests.length > maxOcspQueries) throw new DerError(`from 1 to ${maxOcspQueries} certificates a request, not ${requests.length}`);
    const queries = requests.map((r) => {
      if (r.tag !== tags.sequence) throw new DerError('a Request is a SEQUENCE');
      const [certId] = childrenOf(der, r);
      if (!certId || certId.tag !== tags.sequence) throw new DerError('no CertID');
      const [algorithm, nameHash, keyHash, serial] = childrenOf(der, certId);
      if (!algorithm || algorithm.tag !== tags.sequence || nameHash?.tag !== tags.octetString || keyHash?.tag !== tags.octetString || !serial) throw new DerError('a CertID is hashAlgorithm, issuerNameHash, issuerKeyHash, serialNumber');
      const [hashOid] = childrenOf(der, algorithm);
      return { serial: integerHex(der, serial), certId: Buffer.from(whole(der, certId)), hash: ocspHashes[readOid(der, hashOid)], issuerNameHash: Buffer.from(contents(der, nameHash)), issuerKeyHash: Buffer.from(contents(der, keyHash)) };
    });
    const extensions = fields.find((f) => f.tag === 0xa2);
    let nonce: Buffer | undefined;
    if (extensions) {
      const list = expect(der, extensions.start, tags.sequence, extensions.end);
      for (const ext of childrenOf(der, list)) {
        const [id] = childrenOf(der, ext);
        if (readOid(der, id) === ocspOids.nonce) nonce = Buffer.from(whole(der, ext));
      }
    }
    return { queries, ...(nonce ? { nonce } : {}) };
  } catch (e) {
    if (e instanceof DerError) throw new PkiError('ocsp_malformed', `not an OCSP request: ${e.message}`);
    throw e;
  }
}

/** Whether a query names this issuing CA: the hashes of its subject and of its public key, by the query's hash. */
export function ocspQueryOf(issuer: CaKeyPair, query: OcspQuery): boolean {
  if (!query.hash) return false;
  const ca = issuerOf(issuer);
  const hash = (b: Uint8Array) => createHash(query.hash!).update(b).digest();
  return hash(ca.name).equals(query.issuerNameHash) && hash(issuerKeyBits(issuer)).equals(query.issuerKeyHash);
}

/** The issuing CA's subjectPublicKey bits (what a CertID's issuerKeyHash and a responder's KeyHash hash). */
function issuerKeyBits(issuer: CaKeyPair): Uint8Array {
  const der = pemToDer(issuer.certificatePem);
  const spki = parseCertificate(der).spki;
  const [, key] = childrenOf(spki, expect(spki, 0, tags.sequence));
  return spki.subarray(key!.start + 1, key!.end);
}

/** A successful OCSPResponse: a BasicOCSPResponse signed by the issuing CA, one SingleResponse a query, valid until `nextUpdateHours` from now. */
export async function createOcspResponse(issuer: CaKeyPair, answers: { query: OcspQuery; answer: OcspAnswer }[], opts: { now?: Date; nextUpdateHours?: number; nonce?: Buffer } = {}): Promise<Uint8Array> {
  const ca = issuerOf(issuer);
  const now = opts.now ?? new Date();
  const next = new Date(now.getTime() + (opts.nextUpdateHours ?? 1) * 3_600_000);
  const status = (a: OcspAnswer) => {
    if (a.status === 'good') return Buffer.of(0x80, 0x00); // [0] IMPLICIT NULL
    if (a.status === 'unknown') return Buffer.of(0x82, 0x00); // [2] IMPLICIT NULL
    return tlv(0xa1, generalizedTime(a.revokedAt), ...(a.reason && a.reason !== 'unspecified' ? [explicit(0, smallInteger(reasonCodes[a.reason], tags.enumerated))] : []));
  };
  const singles = answers.map(({ query, answer }) => sequence(query.certId, status(answer), generalizedTime(now), explicit(0, generalizedTime(next))));
  const responderId = tlv(0xa2, octetString(createHash('sha1').update(issuerKeyBits(issuer)).digest())); // byKey
  const tbs = sequence(responderId, generalizedTime(now), sequence(...singles), ...(opts.nonce ? [explicit(1, sequence(opts.nonce))] : []));
  const basic = sequence(tbs, ecdsaWithSha256, bitString(await ca.sign(tbs)));
  return sequence(tlv(tags.enumerated, Buffer.of(0)), explicit(0, sequence(oid(ocspOids.basic), octetString(basic))));
}

/** An OCSPResponse without an answer: the request was malformed (1), the responder failed (2), or it does not answer for that CA (6). */
export function ocspErrorResponse(status: 'malformedRequest' | 'internalError' | 'unauthorized'): Uint8Array {
  return sequence(tlv(tags.enumerated, Buffer.of({ malformedRequest: 1, internalError: 2, unauthorized: 6 }[status])));
}

// ---------------------------------------------------------------------------------------------------
// CA keys at rest

const keyFormatVersion = 1;
const nonceBytes = 12; // the GCM nonce size NIST SP 800-38D recommends
const tagBytes = 16;

function assertKek(kek: Uint8Array): void {
  if (kek.length !== 32) throw new PkiError('kek_size', `the key-encryption key must be 32 bytes, not ${kek.length}`);
}

/** base64 of: version (1 byte) ‖ nonce (12) ‖ AES-256-GCM ciphertext of the PKCS#8 ‖ tag (16); the version byte is authenticated too. */
export async function encryptPrivateKey(key: CryptoKey, kek: Uint8Array): Promise<string> {
  assertKek(kek);
  const pkcs8 = Buffer.from(await crypto.subtle.exportKey('pkcs8', key));
  const nonce = randomBytes(nonceBytes);
  const version = Buffer.of(keyFormatVersion);
  const cipher = createCipheriv('aes-256-gcm', kek, nonce, { authTagLength: tagBytes });
  cipher.setAAD(version);
  const ciphertext = Buffer.concat([cipher.update(pkcs8), cipher.final()]);
  pkcs8.fill(0);
  return Buffer.concat([version, nonce, ciphertext, cipher.getAuthTag()]).toString('base64');
}

export async function decryptPrivateKey(text: string, kek: Uint8Array): Promise<CryptoKey> {
  assertKek(kek);
  const blob = Buffer.from(text, 'base64');
  if (blob.length < 1 + nonceBytes + tagBytes + 1 || blob[0] !== keyFormatVersion) throw new PkiError('key_decrypt', 'not an encrypted key of a known version');
  const nonce = blob.subarray(1, 1 + nonceBytes);
  const ciphertext = blob.subarray(1 + nonceBytes, blob.length - tagBytes);
  const decipher = createDecipheriv('aes-256-gcm', kek, nonce, { authTagLength: tagBytes });
  decipher.setAAD(blob.subarray(0, 1));
  decipher.setAuthTag(blob.subarray(blob.length - tagBytes));
  let pkcs8: Buffer;
  try {
    pkcs8 = Buffer.concat([decipher.update(ciphertext), decipher.final()]);
  } catch {
    throw new PkiError('key_decrypt', 'the key does not decrypt: wrong key-encryption key, or the text was altered');
  }
  try {
    return await crypto.subtle.importKey('pkcs8', pkcs8, ecdsaP256, true, ['sign']);
  } catch {
    throw new PkiError('key_type', 'the decrypted key is not an ECDSA P-256 key');
  } finally {
    pkcs8.fill(0);
  }
}

function readCaCertificate(certificatePem: string): X509Certificate {
  try {
    return new X509Certificate(Buffer.from(pemToDer(certificatePem)));
  } catch (error) {
    throw new PkiError('certificate_malformed', `unreadable certificate: ${(error as Error).message}`);
  }
}

async function pairFor(certificate: X509Certificate, certificatePem: string, privateKey: KeyObject): Promise<CaKeyPair> {
  assertP256(privateKey, 'the private key');
  assertP256(certificate.publicKey, "the certificate's key");
  if (!certificate.checkPrivateKey(privateKey)) throw new PkiError('key_mismatch', 'the private key does not belong to the certificate');
  if (!certificate.ca) throw new PkiError('not_a_ca', 'the certificate is not a CA (basicConstraints cA is not true)');
  let mayCertify: boolean;
  try {
    const keyUsage = parseCertificate(certificate.raw).extensions.find((e) => e.id === oids.keyUsage);
    mayCertify = !keyUsage || hasKeyUsageBit(certificate.raw, keyUsage.value, 5);
  } catch (error) {
    throw new PkiError('certificate_malformed', `unreadable certificate: ${(error as Error).message}`);
  }
  if (!mayCertify) throw new PkiError('not_a_ca', 'the certificate may not sign certificates (keyUsage lacks keyCertSign)');
  return { certificatePem, privateKey: signingKey(privateKey), publicKey: verifyingKey(certificate.publicKey) };
}

/** A CA pair back from its stored certificate and encrypted key. */
export async function loadCa(certificatePem: string, encryptedKey: string, kek: Uint8Array): Promise<CaKeyPair> {
  const key = await decryptPrivateKey(encryptedKey, kek);
  return pairFor(readCaCertificate(certificatePem), certificatePem, KeyObject.from(key));
}

/** An operator's own root: its certificate and its private key (PKCS#8 or SEC1 "EC PRIVATE KEY" PEM). */
export async function importRoot(certificatePem: string, keyPem: string): Promise<CaKeyPair> {
  const certificate = readCaCertificate(certificatePem);
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: keyPem, format: 'pem' });
  } catch (error) {
    throw new PkiError('key_unreadable', `unreadable private key: ${(error as Error).message}`);
  }
  return pairFor(certificate, certificate.toString(), key);
}

// ---------------------------------------------------------------------------------------------------
// EST's certs-only response

/**
 * A degenerate CMS SignedData holding only certificates (RFC 7030 §4.1.3, §4.2.3; RFC 5652 §5.1):
 * no digest algorithms, no content, no signers. The certificates keep the order given.
 */
export function certsOnly(certs: Uint8Array[]): Uint8Array {
  const signedData = sequence(
    smallInteger(1), // RFC 5652 §5.1: version 1 with only X.509 certificates
    tlv(tags.set, empty),
    sequence(oid(oids.cmsData)),
    tlv(0xa0, ...certs), // certificates [0] IMPLICIT CertificateSet
    tlv(tags.set, empty),
  );
  return sequence(oid(oids.cmsSignedData), explicit(0, signedData));
}

// ---------------------------------------------------------------------------------------------------
// Reading certificates

interface ParsedCertificate {
  tbs: Uint8Array;
  serial: string;
  issuer: Der;
  subject: Der;
  notBefore: Date;
  notAfter: Date;
  spki: Uint8Array;
  extensions: ParsedExtension[];
}

function parseCertificate(der: Uint8Array): ParsedCertificate {
  const certificate = expect(der, 0, tags.sequence);
  if (certificate.end !== der.length) throw new DerError('bytes after the certificate');
  const [tbsNode] = childrenOf(der, certificate);
  if (!tbsNode || tbsNode.tag !== tags.sequence) throw new DerError('not a Certificate');
  const fields = childrenOf(der, tbsNode);
  if (fields[0]?.tag === 0xa0) fields.shift(); // version
  const [serial, , issuer, validityNode, subject, spki, ...optional] = fields;
  if (!serial || !issuer || !validityNode || !subject || !spki) throw new DerError('not a TBSCertificate');
  const [notBefore, notAfter] = childrenOf(der, validityNode);
  if (!notBefore || !notAfter) throw new DerError('no validity');
  const extensionsNode = optional.find((node) => node.tag === 0xa3);
  return {
    tbs: whole(der, tbsNode),
    serial: integerHex(der, serial),
    issuer,
    subject,
    notBefore: readTime(der, notBefore),
    notAfter: readTime(der, notAfter),
    spki: whole(der, spki),
    extensions: extensionsNode ? readExtensions(der, expect(der, extensionsNode.start, tags.sequence, extensionsNode.end)) : [],
  };
}

function sanUris(der: Uint8Array, extensions: ParsedExtension[]): string[] {
  const san = extensions.find((e) => e.id === oids.subjectAltName);
  if (!san) return [];
  const names = expect(der, san.value.start, tags.sequence, san.value.end);
  return childrenOf(der, names)
    .filter((name) => name.tag === 0x86)
    .map((name) => Buffer.from(contents(der, name)).toString('latin1'));
}

/** What the platform needs to know about a certificate, PEM or DER. */
export async function certificateFacts(pemOrDer: string | Uint8Array): Promise<CertificateFacts> {
  const der = toDer(pemOrDer);
  let parsed: ParsedCertificate;
  try {
    parsed = parseCertificate(der);
  } catch (error) {
    throw new PkiError('certificate_malformed', `unreadable certificate: ${(error as Error).message}`);
  }
  const constraints = parsed.extensions.find((e) => e.id === oids.basicConstraints);
  return {
    serial: parsed.serial,
    fingerprint: sha256Hex(der),
    subjectCommonName: nameAttribute(der, parsed.subject, oids.commonName),
    organization: nameAttribute(der, parsed.subject, oids.organization),
    sanUris: sanUris(der, parsed.extensions),
    issuerCommonName: nameAttribute(der, parsed.issuer, oids.commonName),
    notBefore: parsed.notBefore,
    notAfter: parsed.notAfter,
    isCa: constraints ? isCaConstraint(der, constraints.value) : false,
    spkiFingerprint: sha256Hex(parsed.spki),
  };
}

/** Whether `issuer` signed `cert` (name, key identifier and signature all match) and `cert` is valid at `now`. */
export async function verifiedBy(cert: string | Uint8Array, issuer: string | Uint8Array, now: Date = new Date()): Promise<boolean> {
  let subject: X509Certificate;
  let authority: X509Certificate;
  try {
    subject = new X509Certificate(Buffer.from(toDer(cert)));
    authority = new X509Certificate(Buffer.from(toDer(issuer)));
  } catch {
    return false;
  }
  const at = now.getTime();
  if (at < subject.validFromDate.getTime() || at > subject.validToDate.getTime()) return false;
  return subject.checkIssued(authority) && subject.verify(authority.publicKey);
}
