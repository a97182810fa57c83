// Device identity (docs/identity.md): the platform's certificate authorities, the registry of
// pre-authorised devices, one-time enrolment tokens, enrolment from a CSR (the device's key never
// leaves it), and revocation that ends the device's sessions on every node.
import { X509Certificate, createHash } from 'node:crypto';
import { AppError, type ErrorCode } from '../core/errors.js';
import { ConfigError } from '../core/config.js';
import { iso, type Clock } from '../core/clock.js';
import { isUuid, randomToken, uuidv7 } from '../core/ids.js';
import type { Logger } from '../core/logger.js';
import { hashToken, type ServerKeys } from '../auth/keys.js';
import type { AddressLimit } from '../auth/rate-limit.js';
import type { IdentityMetrics } from './metrics.js';
import { noInvalidation, type AccessInvalidation } from '../auth/decision.js';
import type { GroupService } from '../groups/service.js';
import type { ChannelService } from '../channels/service.js';
import type { RegistrationState } from '../db/schema.js';
import { CsrError, PkiError, certificateFacts, createCrl, createOcspResponse, ocspErrorResponse, ocspQueryOf, readOcspRequest, type OcspAnswer, encryptPrivateKey, generateIssuing, generateRoot, importRoot, issueDeviceCertificate, loadCa, pemToDer, verifyCsr, type CaKeyPair, type RevocationReason } from './pki.js';
import type { DeviceCertificate, EnrolmentToken, IdentityEvent, IdentityStore, ManufacturerCa, Paged, Registration } from './store.js';
import { noEvents, type Actor, type EventRecorder } from '../events/types.js';

export const maxBulkRegistrations = 1000;
/** How far in the future a factory certificate's notBefore may be (clocks differ). */
const factoryClockSkewMs = 5 * 60_000;
/** Entries of a manufacturer CA's serial allow-list. */
export const maxManufacturerSerials = 1000;

/** The bus broadcast topic on which a node says it made an issuing CA: every node's TLS listeners then trust it. */
export const trustTopic = 'identity.trust';

export interface IdentityOptions {
  /** Lifetime of a device certificate, days. */
  certificateDays: number;
  /** Default lifetime of an enrolment token, ms. */
  tokenTtlMs: number;
  /** An operator's root (PEM files' contents) instead of one generated at first start. */
  rootCertificatePem?: string;
  rootKeyPem?: string;
}

export interface NewRegistration {
  serial: string;
  model?: string;
  /** The device's public key: a PEM SubjectPublicKeyInfo, or the lowercase hex SHA-256 of its DER. */
  public_key?: string;
  channel_ids?: string[];
  group_ids?: string[];
}

export interface EnrolRequest {
  /** PKCS#10, PEM or base64 DER. */
  csr: string | Uint8Array;
  token?: string;
  /** The serial, when the CSR does not carry it (subject serialNumber, else CN). */
  serial?: string;
  /** The organization the device means to enrol in (an EST label): the token's or the registration's must be it. */
  orgId?: string;
  /**
   * The DER of the factory certificate the device presented as its TLS client certificate (the
   * handshake proved it holds its key), when the platform did not issue it, then the CA
   * certificates it sent after it: a manufacturer CA of an organization may have signed it, or one
   * of those intermediates that chains to it.
   */
  factoryCertificate?: Uint8Array[];
}

export interface NewManufacturerCa {
  name: string;
  /** PEM. */
  certificate: string;
  serials: string[];
  channel_ids?: string[];
  group_ids?: string[];
}

/** Where an enrolment came from, for the audit trail. */
export interface Caller {
  actor: string;
  remote?: string;
  transport: 'http' | 'est' | 'mqtt' | 'api';
}

export interface Enrolled {
  certificate: string;
  /** The issuing CA, then the root. */
  chain: string[];
  serial: string;
  not_after: string;
  org_id: string;
  device_id: string;
  registration_id: string;
  channel_ids: string[];
  /** The platform root, which also signs the listeners' certificates when the platform issued them. */
  root_ca: string;
}

/** The names of the reasons a certificate is revoked for, RFC 5280 §5.3.1. */
export const revocationReasons = ['unspecified', 'keyCompromise', 'superseded', 'cessationOfOperation', 'certificateHold'] as const satisfies readonly RevocationReason[];

const fingerprintPattern = /^[0-9a-f]{64}$/;
const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** `*` matches any run of characters; everything else literally. */
function serialMatches(pattern: string, serial: string): boolean {
  const re = new RegExp(`^${pattern.split('*').map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`);
  return re.test(serial);
}

/** The SHA-256 of a registered key: given as such, or computed from a PEM public key. */
function keyFingerprint(given: string): string {
  const t = given.trim();
  if (fingerprintPattern.test(t.toLowerCase())) return t.toLowerCase();
  if (/^[0-9a-f:]{95}$/i.test(t)) return t.replace(/:/g, '').toLowerCase(); // openssl's colon form
  const m = /-----BEGIN PUBLIC KEY-----([\s\S]+?)-----END PUBLIC KEY-----/.exec(t);
  if (!m) throw new AppError('request.invalid', 'public_key: a PEM public key (BEGIN PUBLIC KEY) or the hex SHA-256 of its DER');
  return sha256(Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64'));
}

export class IdentityService {
  private rootCa: CaKeyPair | undefined;
  private readonly issuers = new Map<string, Promise<CaKeyPair>>();
  /** Told when an organization's issuing CA is made: TLS listeners trust it from then on. */
  private readonly trustListeners = new Set<() => void>();

  constructor(
    private readonly store: IdentityStore,
    private readonly keys: ServerKeys,
    private readonly channels: ChannelService,
    private readonly groups: GroupService,
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly options: IdentityOptions,
    private readonly access: AccessInvalidation = noInvalidation,
    /** Enrolment attempts per client address (a flood is refused before any work). */
    private readonly limiter?: AddressLimit,
    private readonly metrics?: IdentityMetrics,
  ) {}

  /** Where enrolments and revocations go as fleet events (the platform sets its event log). */
  events: EventRecorder = noEvents;

  // --- certificate authorities

  /** The platform root: the stored one, else the operator's (imported) or a new one, stored encrypted. */
  async root(): Promise<CaKeyPair> {
    if (this.rootCa) return this.rootCa;
    const stored = await this.store.root();
    if (stored) {
      try {
        return (this.rootCa = await loadCa(stored.certificate, stored.private_key, this.keys.caKeys));
      } catch (e) {
        // without the key it was stored under, the CA cannot sign: a new root would orphan every device certificate
        if (e instanceof PkiError && e.code === 'key_decrypt') throw new ConfigError('FLEETWIRE_SECRET_KEY', 'the platform CA in the database was stored under another server key: start with the key it was stored under (FLEETWIRE_SECRET_KEY, or secret.key in the data folder)');
        throw e;
      }
    }
    const made = this.options.rootCertificatePem && this.options.rootKeyPem ? await importRoot(this.options.rootCertificatePem, this.options.rootKeyPem) : await generateRoot({ commonName: 'Fleetwire Root CA', now: new Date(this.clock.now()) });
    const kept = await this.keep(made, null);
    this.log.info({ fingerprint: kept.fingerprint, imported: Boolean(this.options.rootCertificatePem) }, 'platform root CA ready');
    return (this.rootCa = await loadCa(kept.certificate, kept.private_key, this.keys.caKeys));
  }

  /** The organization's issuing CA, made on first use (another node may make it at once: one is kept). */
  issuing(orgId: string): Promise<CaKeyPair> {
    let ca = this.issuers.get(orgId);
    if (!ca) {
      ca = this.loadOrMakeIssuing(orgId);
      this.issuers.set(orgId, ca);
      ca.catch(() => this.issuers.delete(orgId));
    }
    return ca;
  }

  private async loadOrMakeIssuing(orgId: string): Promise<CaKeyPair> {
    const stored = await this.store.issuing(orgId);
    if (stored) return loadCa(stored.certificate, stored.private_key, this.keys.caKeys);
    const root = await this.root();
    const made = await generateIssuing(root, { orgId, commonName: `Fleetwire issuing CA ${orgId}`, now: new Date(this.clock.now()) });
    const kept = await this.keep(made, orgId);
    this.log.info({ orgId, fingerprint: kept.fingerprint }, 'issuing CA made for the organization');
    for (const l of this.trustListeners) l();
    return loadCa(kept.certificate, kept.private_key, this.keys.caKeys);
  }

  /** Stores a CA (its key encrypted under the server key): the root (`orgId` null) or an organization's; the one kept when another node stored one first. */
  private async keep(made: CaKeyPair, orgId: string | null) {
    const facts = await certificateFacts(made.certificatePem);
    return this.store.addCa({
      id: uuidv7(this.clock.now()),
      kind: orgId === null ? 'root' : 'issuing',
      org_id: orgId,
      certificate: made.certificatePem,
      private_key: await encryptPrivateKey(made.privateKey, this.keys.caKeys),
      fingerprint: facts.fingerprint,
      not_after: facts.notAfter.toISOString(),
      crl_number: 0,
      created_at: iso(this.clock.now()),
    });
  }

  /** What a TLS listener trusts for devices: the root and every issuing CA (PEM), and the issuing CAs' SHA-256 fingerprints (a certificate signed by one is the platform's). */
  async trustedCas(): Promise<{ certificates: string[]; issuers: Set<string> }> {
    const root = await this.root();
    const issuing = await this.store.allIssuing();
    return { certificates: [root.certificatePem, ...issuing.map((c) => c.certificate)], issuers: new Set(issuing.map((c) => c.fingerprint)) };
  }

  /** Calls `listener` whenever a new issuing CA exists (on this node); returns the function that stops it. */
  onTrustChange(listener: () => void): () => void {
    this.trustListeners.add(listener);
    return () => this.trustListeners.delete(listener);
  }

  async caCertificate(orgId: string): Promise<{ issuing: string; root: string }> {
    const [issuing, root] = await Promise.all([this.issuing(orgId), this.root()]);
    return { issuing: issuing.certificatePem, root: root.certificatePem };
  }

  /** The CA certificates anyone may fetch (EST cacerts): of an organization that has an issuing CA, else 404 as for its CRL. */
  async publishedCa(orgId: string): Promise<{ issuing: string; root: string }> {
    if (!isUuid(orgId) || !(await this.store.issuing(orgId))) throw new AppError('org.not_found', 'No such organization, or it has issued no certificate yet');
    return this.caCertificate(orgId);
  }

  /** The CRL anyone may fetch: of an organization that has an issuing CA (404 otherwise, a made-up id included). */
  async publishedCrl(orgId: string): Promise<{ pem: string; der: Uint8Array }> {
    if (!isUuid(orgId) || !(await this.store.issuing(orgId))) throw new AppError('org.not_found', 'No such organization, or it has issued no certificate yet');
    return this.crl(orgId);
  }

  /**
   * OCSP (RFC 6960) for an organization's certificates, anyone may ask: the answer, DER, signed by
   * its issuing CA (good, revoked with its time and reason, or unknown: another CA's, or a serial it
   * never issued), valid an hour. A malformed request gets OCSP's malformedRequest, not an error.
   */
  async ocsp(orgId: string, request: Uint8Array): Promise<Uint8Array> {
    if (!isUuid(orgId) || !(await this.store.issuing(orgId))) throw new AppError('org.not_found', 'No such organization, or it has issued no certificate yet');
    let parsed;
    try {
      parsed = readOcspRequest(request);
    } catch (e) {
      if (e instanceof PkiError) return ocspErrorResponse('malformedRequest');
      throw e;
    }
    const issuer = await this.issuing(orgId);
    const unknown: OcspAnswer = { status: 'unknown' };
    const answers = await Promise.all(
      parsed.queries.map(async (query) => {
        const c = ocspQueryOf(issuer, query) ? await this.store.certificate(orgId, query.serial) : undefined;
        const reason = (revocationReasons as readonly string[]).includes(c?.revocation_reason ?? '') ? (c!.revocation_reason as RevocationReason) : 'unspecified';
        const answer: OcspAnswer = !c ? unknown : c.status === 'revoked' ? { status: 'revoked', revokedAt: new Date(c.revoked_at!), reason } : { status: 'good' };
        return { query, answer };
      }),
    );
    return createOcspResponse(issuer, answers, { now: new Date(this.clock.now()), nextUpdateHours: 1, ...(parsed.nonce ? { nonce: parsed.nonce } : {}) });
  }

  /** The organization's CRL, signed by its issuing CA: every revoked certificate, a new CRL number each time. */
  async crl(orgId: string): Promise<{ pem: string; der: Uint8Array }> {
    const issuer = await this.issuing(orgId);
    const ca = (await this.store.issuing(orgId))!;
    const revoked = await this.store.revokedOf(orgId);
    const crlNumber = await this.store.nextCrlNumber(ca.id);
    return createCrl(issuer, revoked.map((r) => ({ serial: r.serial, revokedAt: new Date(r.revoked_at), reason: (revocationReasons as readonly string[]).includes(r.revocation_reason ?? '') ? (r.revocation_reason as RevocationReason) : 'unspecified' })), { crlNumber, now: new Date(this.clock.now()), nextUpdateHours: 24 });
  }

  // --- registrations

  async register(orgId: string, inputs: NewRegistration[], caller: Caller): Promise<Registration[]> {
    if (inputs.length > maxBulkRegistrations) throw new AppError('registration.bulk_too_large', `At most ${maxBulkRegistrations} registrations per request, got ${inputs.length}`);
    const serials = inputs.map((r) => r.serial);
    const twice = serials.filter((s, i) => serials.indexOf(s) !== i);
    if (twice.length > 0) throw new AppError('registration.serial_taken', `Serials given twice: ${[...new Set(twice)].slice(0, 10).join(', ')}`, { serials: [...new Set(twice)].slice(0, 100) });
    const taken = await this.store.takenSerials(orgId, serials);
    if (taken.length > 0) throw new AppError('registration.serial_taken', `Already registered: ${taken.slice(0, 10).join(', ')}`, { serials: taken.slice(0, 100) });
    const channelIds = [...new Set(inputs.flatMap((r) => r.channel_ids ?? []))];
    const groupIds = [...new Set(inputs.flatMap((r) => r.group_ids ?? []))];
    await this.channels.requireAll(orgId, channelIds);
    for (const g of groupIds) await this.groups.get(orgId, g);
    const now = iso(this.clock.now());
    const rows = inputs.map((r) => ({
      id: uuidv7(this.clock.now()),
      org_id: orgId,
      serial: r.serial,
      model: r.model ?? '',
      key_fingerprint: r.public_key ? keyFingerprint(r.public_key) : null,
      channel_ids: [...new Set(r.channel_ids ?? [])] as unknown,
      group_ids: [...new Set(r.group_ids ?? [])] as unknown,
      state: 'pending' as const,
      device_id: null,
      enrolled_at: null,
      created_at: now,
      updated_at: now,
    }));
    await this.store.insertRegistrations(rows);
    await this.audit(orgId, undefined, 'register', caller, 'ok', undefined, `${rows.length} registration${rows.length === 1 ? '' : 's'}`);
    return rows.map((r) => ({ ...r, channel_ids: r.channel_ids as string[], group_ids: r.group_ids as string[] }));
  }

  async registration(orgId: string, id: string): Promise<Registration> {
    const r = isUuid(id) ? await this.store.registration(orgId, id) : undefined;
    if (!r) throw new AppError('registration.not_found');
    return r;
  }

  listRegistrations(orgId: string, q: Paged & { state?: RegistrationState; serial?: string }): Promise<{ total: number; items: Registration[] }> {
    return this.store.listRegistrations(orgId, q);
  }

  /**
   * An operator's transition of a registration: `suspend` (enrolled → suspended: refused
   * everywhere, certificates kept), `resume` (suspended → enrolled), `reset` (back to pending: its
   * certificates are revoked and its key forgotten: the device enrols again with a token, with a
   * new key if it has one), `revoke` (for good: its certificates are revoked). The device's sessions end at once.
   */
  async transition(orgId: string, id: string, action: 'suspend' | 'resume' | 'reset' | 'revoke', caller: Caller): Promise<Registration> {
    const r = await this.registration(orgId, id);
    const now = iso(this.clock.now());
    const moves: Record<typeof action, { from: RegistrationState[]; to: RegistrationState }> = {
      suspend: { from: ['enrolled'], to: 'suspended' },
      resume: { from: ['suspended'], to: 'enrolled' },
      reset: { from: ['enrolled', 'suspended', 'pending'], to: 'pending' },
      revoke: { from: ['pending', 'enrolled', 'suspended'], to: 'revoked' },
    };
    const move = moves[action];
    const moved = await this.store.moveRegistration(orgId, id, move.from, { state: move.to, updated_at: now, ...(action === 'reset' ? { enrolled_at: null, key_fingerprint: null } : {}) });
    if (!moved) {
      await this.audit(orgId, id, action, caller, 'refused', 'registration.state', `the registration is ${r.state}`);
      throw new AppError('registration.state', `The registration is ${r.state}: it cannot be ${action === 'reset' ? 'reset' : `${action}d`} (from ${move.from.join(' or ')})`, { state: r.state });
    }
    if ((action === 'reset' || action === 'revoke') && r.device_id) {
      await this.store.revokeCertificates(orgId, { device_id: r.device_id }, now, action === 'reset' ? 'superseded' : 'cessationOfOperation');
    }
    if (r.device_id) this.access.invalidateDevice(r.device_id);
    await this.audit(orgId, id, action, caller, 'ok', undefined, `${r.state} → ${move.to}`);
    this.log.info({ orgId, registrationId: id, from: r.state, to: move.to, actor: caller.actor }, `registration ${action}`);
    return this.registration(orgId, id);
  }

  async deleteRegistration(orgId: string, id: string, caller: Caller): Promise<void> {
    const r = await this.registration(orgId, id);
    if (r.state === 'enrolled' || r.state === 'suspended') throw new AppError('registration.state', `The registration is ${r.state}: revoke it first`, { state: r.state });
    await this.store.deleteRegistration(orgId, id);
    await this.audit(orgId, id, 'delete', caller, 'ok', undefined, r.serial);
  }

  // --- enrolment tokens

  /** A one-time enrolment token; `token` is shown only here (the database keeps its hash). */
  async createToken(orgId: string, input: { ttl_ms?: number; serial_pattern?: string }, caller: Caller): Promise<EnrolmentToken & { token: string }> {
    const now = this.clock.now();
    const token = `fwe_${randomToken(32)}`;
    const row = {
      id: uuidv7(now),
      org_id: orgId,
      token_hash: hashToken(token),
      serial_pattern: input.serial_pattern ?? null,
      expires_at: iso(now + (input.ttl_ms ?? this.options.tokenTtlMs)),
      used_at: null,
      registration_id: null,
      created_by: caller.actor,
      created_at: iso(now),
    };
    await this.store.insertToken(row);
    await this.audit(orgId, undefined, 'token', caller, 'ok', undefined, `expires ${row.expires_at}${row.serial_pattern ? `, serials ${row.serial_pattern}` : ''}`);
    const { token_hash: _, ...shown } = row;
    return { ...shown, token };
  }

  listTokens(orgId: string, q: Paged): Promise<{ total: number; items: EnrolmentToken[] }> {
    return this.store.listTokens(orgId, q);
  }

  async deleteToken(orgId: string, id: string): Promise<void> {
    if (!isUuid(id) || !(await this.store.deleteToken(orgId, id))) throw new AppError('enrolment_token.not_found');
  }

  // --- enrolment

  /**
   * Enrols a device from its CSR. Proof: a one-time token (which names the organization; the
   * registration is the serial's, made now if the organization has none), or the key itself when
   * it was registered. The CSR's signature proves possession of the key. An enrolled device
   * enrols again only with its registered key (a factory reset keeps it), or after a reset.
   * Every attempt is in the audit trail, a refusal with the code of the step that failed.
   */
  async enrol(req: EnrolRequest, caller: Caller): Promise<Enrolled> {
    const attempt = this.attempt('enrol', caller);
    const { refuse } = attempt;
    await this.checkRate(caller);
    const csr = await this.verifiedCsr(req.csr, refuse);
    const serial = req.serial ?? csr.serialNumber ?? csr.subjectCommonName;
    let registration: Registration | undefined;
    let token: Awaited<ReturnType<IdentityStore['tokenByHash']>>;
    if (req.token !== undefined) {
      token = await this.store.tokenByHash(hashToken(req.token));
      if (!token || (req.orgId !== undefined && token.org_id !== req.orgId)) return refuse('enrolment.token_invalid', 'The enrolment token is unknown');
      attempt.orgId = token.org_id;
      if (token.used_at) return refuse('enrolment.token_used', `The enrolment token was used at ${token.used_at}`);
      if (Date.parse(token.expires_at) <= this.clock.now()) return refuse('enrolment.token_expired', `The enrolment token expired at ${token.expires_at}`);
      if (!serial) return refuse('enrolment.csr_invalid', 'Name the serial: in the request (serial) or as the CSR subject serialNumber or CN', { reason: 'serial_missing' });
      if (token.serial_pattern && !serialMatches(token.serial_pattern, serial)) return refuse('enrolment.serial_not_allowed', `The token covers serials ${token.serial_pattern}, not ${serial}`);
      registration = (await this.store.registrationBySerial(token.org_id, serial)) ?? (await this.register(token.org_id, [{ serial }], { ...caller, actor: `token:${token.id}` }))[0]!;
    } else if (req.factoryCertificate) {
      const factory = await this.factoryIdentity(req.factoryCertificate, req.orgId, attempt);
      attempt.orgId = factory.ca.org_id;
      if (req.serial !== undefined && req.serial !== factory.serial) return refuse('enrolment.serial_not_allowed', `The factory certificate is of serial ${factory.serial}, not ${req.serial}`);
      registration =
        (await this.store.registrationBySerial(factory.ca.org_id, factory.serial)) ??
        (await this.register(factory.ca.org_id, [{ serial: factory.serial, channel_ids: factory.ca.channel_ids, group_ids: factory.ca.group_ids }], { ...caller, actor: `manufacturer:${factory.ca.id}` }))[0]!;
    } else {
      // a public key is no secret: registered twice (another organization may have registered it),
      // it proves nothing about which registration is the device's, and a token has to say
      const byKey = await this.store.registrationsByKey(csr.fingerprint);
      if (byKey.length > 1) return refuse('enrolment.not_registered', 'This key is registered more than once: enrol with a token of the organization');
      registration = byKey[0];
      if (!registration || (req.orgId !== undefined && registration.org_id !== req.orgId)) return refuse('enrolment.not_registered', 'No registration holds this key: register it, or enrol with a token');
      attempt.orgId = registration.org_id;
    }
    attempt.registrationId = registration.id;
    if (registration.key_fingerprint && registration.key_fingerprint !== csr.fingerprint) return refuse('enrolment.key_mismatch', `The registration of ${registration.serial} holds another key`);
    if (registration.state === 'suspended' || registration.state === 'revoked') return refuse('enrolment.registration_blocked', `The registration of ${registration.serial} is ${registration.state}`);
    // enrolled: again only with the registered key (the same device after a factory reset)
    if (registration.state === 'enrolled' && registration.key_fingerprint !== csr.fingerprint) return refuse('enrolment.already_enrolled', `${registration.serial} is enrolled`);
    return this.issue(attempt, registration, csr, caller, token ? { token: { id: token.id } } : {});
  }

  /**
   * Renews a device's certificate. The device presents its current one (TLS client authentication
   * proved it holds that key) and a CSR of the same key or a new one. The new certificate is
   * issued at once; the presented one stays active until the device first uses the new one (then
   * it is revoked as superseded), so a renewal whose answer was lost costs the device nothing. An
   * earlier renewal's certificate that was never used is revoked now: a device has at most two.
   */
  async renew(req: { presented: { deviceId: string; serial: string }; csr: string | Uint8Array; orgId?: string }, caller: Caller): Promise<Enrolled> {
    const attempt = this.attempt('renew', caller);
    const { refuse } = attempt;
    await this.checkRate(caller);
    const found = await this.store.certificateBySerial(req.presented.serial);
    // an EST label naming another organization than the certificate's: as if the certificate were not the platform's
    const current = found && found.device_id === req.presented.deviceId && (req.orgId === undefined || req.orgId === found.org_id) ? found : undefined;
    if (current) Object.assign(attempt, { orgId: current.org_id, registrationId: current.registration_id ?? undefined });
    const state = !current ? 'unknown' : current.status === 'revoked' ? 'revoked' : Date.parse(current.not_after) <= this.clock.now() ? 'expired' : undefined;
    if (!current || state || !current.registration_id) return refuse('renewal.certificate_inactive', `Certificate ${req.presented.serial} is ${state ?? 'of no registration'}`);
    const registration = await this.store.registration(current.org_id, current.registration_id);
    if (!registration || registration.device_id !== current.device_id) return refuse('renewal.certificate_inactive', `Certificate ${req.presented.serial} belongs to no enrolled registration`);
    if (registration.state !== 'enrolled') return refuse('enrolment.registration_blocked', `The registration of ${registration.serial} is ${registration.state}`);
    const csr = await this.verifiedCsr(req.csr, refuse);
    return this.issue(attempt, registration, csr, caller, { replaces: current.serial });
  }

  /**
   * A certificate seen on a connection for the first time since its device's entry was cached:
   * when it renewed another that is still active, that one is revoked now (superseded), on every
   * node. Called by the access decision; what fails is logged, never the connection's concern.
   */
  async certificateUsed(deviceId: string, serial: string): Promise<void> {
    const c = await this.store.certificateBySerial(serial);
    if (!c || c.device_id !== deviceId || c.status !== 'active' || !c.replaces) return;
    const superseded = await this.store.revokeCertificates(c.org_id, { serial: c.replaces }, iso(this.clock.now()), 'superseded');
    if (superseded.length === 0) return;
    this.access.invalidateDevice(deviceId);
    await this.audit(c.org_id, c.registration_id ?? undefined, 'supersede', { actor: 'device', transport: 'api' }, 'ok', undefined, `${c.replaces} superseded by ${serial}, now in use`);
    this.log.info({ orgId: c.org_id, deviceId, serial, superseded: c.replaces }, 'renewed certificate in use: the one it replaces is revoked');
  }

  /**
   * The manufacturer CA that signed a factory certificate and allows its serial (subject
   * serialNumber, else CN): one of an organization's (under an EST label, of that one). A device
   * maker's CA registered by two organizations that both allow the serial says nothing about
   * which one the device is for: refused, as for a key registered twice.
   */
  private async factoryIdentity(chain: Uint8Array[], orgId: string | undefined, attempt: { orgId?: string; refuse: (code: ErrorCode, detail: string) => Promise<never> }): Promise<{ ca: ManufacturerCa; serial: string }> {
    const { refuse } = attempt;
    let certs: X509Certificate[];
    try {
      certs = chain.map((der) => new X509Certificate(der));
    } catch {
      return refuse('enrolment.factory_certificate_invalid', 'The client certificate (or one sent after it) does not read');
    }
    const leaf = certs[0];
    if (!leaf) return refuse('enrolment.factory_certificate_invalid', 'No client certificate');
    const now = this.clock.now();
    // a factory's clock and ours may differ by a few minutes: a certificate made just now is valid
    const valid = (c: X509Certificate) => Date.parse(c.validFrom) <= now + factoryClockSkewMs && Date.parse(c.validTo) > now;
    if (!valid(leaf)) return refuse('enrolment.factory_certificate_invalid', `The factory certificate is valid from ${new Date(leaf.validFrom).toISOString()} to ${new Date(leaf.validTo).toISOString()}`);
    const serial = subjectSerial(leaf.subject);
    if (!serial) return refuse('enrolment.factory_certificate_invalid', 'The factory certificate names no serial (subject serialNumber or CN)');
    // up the chain the device sent: each link a valid CA that signed the one before, until a registered manufacturer CA signed one
    let signers: ManufacturerCa[] = [];
    for (let at: X509Certificate | undefined = leaf, depth = 0; at && depth < 4; depth++) {
      const cert: X509Certificate = at;
      signers = (await this.store.manufacturerCasBySubject(cert.issuer)).filter((ca) => (orgId === undefined || ca.org_id === orgId) && signedBy(cert, ca.certificate));
      if (signers.length > 0) break;
      at = certs.find((c) => c !== cert && c.ca && valid(c) && cert.checkIssued(c) && cert.verify(c.publicKey));
    }
    // a refusal by one organization's CA is in its audit trail (its operator sees the serial off the list)
    const owners = new Set(signers.map((ca) => ca.org_id));
    if (owners.size === 1) attempt.orgId = signers[0]!.org_id;
    const allowing = signers.filter((ca) => ca.serials.some((p) => serialMatches(p, serial)));
    if (allowing.length === 0) return refuse('enrolment.factory_certificate_invalid', signers.length ? `No manufacturer CA that signed it allows serial ${serial}` : 'No manufacturer CA registered signed the factory certificate or a CA certificate sent with it');
    if (allowing.length > 1) return refuse('enrolment.not_registered', `Serial ${serial} is allowed by the manufacturer CAs of more than one organization: enrol with a token, or under an EST label`);
    return { ca: allowing[0]!, serial };
  }

  // --- manufacturer CAs

  async addManufacturerCa(orgId: string, input: NewManufacturerCa, caller: Caller): Promise<ManufacturerCa> {
    const cert = readCaCertificate(input.certificate, this.clock.now());
    const serials = checkedSerials(input.serials);
    const fingerprint = sha256(cert.raw);
    if (await this.store.manufacturerCaByFingerprint(orgId, fingerprint)) throw new AppError('manufacturer_ca.exists', `The CA ${cert.subject.replace(/\n/g, ', ')} is registered in the organization already`);
    const channelIds = [...new Set(input.channel_ids ?? [])];
    const groupIds = [...new Set(input.group_ids ?? [])];
    await this.channels.requireAll(orgId, channelIds);
    for (const g of groupIds) await this.groups.get(orgId, g);
    const now = iso(this.clock.now());
    const row: ManufacturerCa = {
      id: uuidv7(this.clock.now()),
      org_id: orgId,
      name: input.name,
      certificate: cert.toString(),
      fingerprint,
      subject: cert.subject,
      not_after: new Date(cert.validTo).toISOString(),
      serials,
      channel_ids: channelIds,
      group_ids: groupIds,
      created_at: now,
      updated_at: now,
    };
    await this.store.insertManufacturerCa(row);
    await this.audit(orgId, undefined, 'manufacturer_ca', caller, 'ok', undefined, `${input.name}: ${serials.length} serial pattern${serials.length === 1 ? '' : 's'}`);
    this.log.info({ orgId, manufacturerCaId: row.id, fingerprint, actor: caller.actor }, 'manufacturer CA registered');
    return row;
  }

  async manufacturerCa(orgId: string, id: string): Promise<ManufacturerCa> {
    const ca = isUuid(id) ? await this.store.manufacturerCa(orgId, id) : undefined;
    if (!ca) throw new AppError('manufacturer_ca.not_found');
    return ca;
  }

  listManufacturerCas(orgId: string, q: Paged): Promise<{ total: number; items: ManufacturerCa[] }> {
    return this.store.listManufacturerCas(orgId, q);
  }

  /** Changes the name, allow-list, or what devices join: for enrolments from now on (enrolled devices keep theirs). */
  async updateManufacturerCa(orgId: string, id: string, set: { name?: string; serials?: string[]; channel_ids?: string[]; group_ids?: string[] }, caller: Caller): Promise<ManufacturerCa> {
    await this.manufacturerCa(orgId, id);
    const serials = set.serials && checkedSerials(set.serials);
    const channelIds = set.channel_ids && [...new Set(set.channel_ids)];
    const groupIds = set.group_ids && [...new Set(set.group_ids)];
    if (channelIds) await this.channels.requireAll(orgId, channelIds);
    for (const g of groupIds ?? []) await this.groups.get(orgId, g);
    await this.store.updateManufacturerCa(orgId, id, { ...(set.name !== undefined ? { name: set.name } : {}), ...(serials ? { serials } : {}), ...(channelIds ? { channel_ids: channelIds } : {}), ...(groupIds ? { group_ids: groupIds } : {}), updated_at: iso(this.clock.now()) });
    await this.audit(orgId, undefined, 'manufacturer_ca', caller, 'ok', undefined, `updated ${id}`);
    return this.manufacturerCa(orgId, id);
  }

  /** From now on its factory certificates enrol nothing; devices it enrolled keep their platform certificates. */
  async deleteManufacturerCa(orgId: string, id: string, caller: Caller): Promise<void> {
    if (!isUuid(id) || !(await this.store.deleteManufacturerCa(orgId, id))) throw new AppError('manufacturer_ca.not_found');
    await this.audit(orgId, undefined, 'manufacturer_ca', caller, 'ok', undefined, `deleted ${id}`);
  }

  /** What an enrolment or renewal refuses with, as far as it got: each refusal counted, audited and logged with its code. */
  private attempt(action: 'enrol' | 'renew', caller: Caller) {
    const at: { orgId?: string; registrationId?: string; refuse: (code: ErrorCode, detail: string, details?: Record<string, unknown>) => Promise<never> } = {
      refuse: async (code, detail, details) => {
        this.metrics?.enrolments.inc({ outcome: 'refused', code });
        await this.audit(at.orgId ?? null, at.registrationId, action, caller, 'refused', code, detail);
        this.log.info({ orgId: at.orgId, registrationId: at.registrationId, code, remote: caller.remote, transport: caller.transport }, `${action === 'enrol' ? 'enrolment' : 'renewal'} refused: ${detail}`);
        throw new AppError(code, detail, details);
      },
    };
    return at;
  }

  /** Enrolment attempts per client address: a flood is refused before any work. */
  private async checkRate(caller: Caller): Promise<void> {
    if (!this.limiter) return;
    const waitMs = await this.limiter.checkAddress(caller.remote ?? 'unknown');
    if (waitMs <= 0) return;
    this.metrics?.enrolments.inc({ outcome: 'refused', code: 'enrolment.rate_limited' });
    this.log.warn({ remote: caller.remote, transport: caller.transport }, 'enrolment attempts over the limit of the address');
    throw new AppError('enrolment.rate_limited', `Too many enrolment attempts from this address: try again in ${Math.ceil(waitMs / 1000)} s`, { retry_after: Math.ceil(waitMs / 1000) });
  }

  /** The CSR checked (signature, key type, extensions) and not seen before; its request hash beside it. */
  private async verifiedCsr(given: string | Uint8Array, refuse: (code: ErrorCode, detail: string, details?: Record<string, unknown>) => Promise<never>) {
    let csr;
    try {
      csr = await verifyCsr(given);
    } catch (e) {
      if (e instanceof CsrError) return refuse('enrolment.csr_invalid', e.message, { reason: e.code });
      throw e;
    }
    const requestHash = sha256(typeof given === 'string' ? pemToDerLoose(given) : given);
    if (await this.store.requestSeen(requestHash)) return refuse('enrolment.request_replayed', 'This certificate request was used before: make a new one');
    return { ...csr, requestHash };
  }

  /** Issues the certificate and writes it with everything an enrolment or renewal changes, at once. */
  private async issue(
    attempt: { orgId?: string; refuse: (code: ErrorCode, detail: string) => Promise<never> },
    registration: Registration,
    csr: Awaited<ReturnType<typeof verifyCsr>> & { requestHash: string },
    caller: Caller,
    how: { token?: { id: string }; replaces?: string },
  ): Promise<Enrolled> {
    const orgId = registration.org_id;
    const renewal = how.replaces !== undefined;
    // the device (made on first enrolment, with its channels and groups) and its certificate, all written at once
    const now = this.clock.now();
    const deviceId = registration.device_id ?? uuidv7(now);
    const [issuer, root] = await Promise.all([this.issuing(orgId), this.root()]);
    const cert = await issueDeviceCertificate(issuer, csr.spki, { orgId, deviceId, validityDays: this.options.certificateDays, now: new Date(now) });
    const committed = await this.store.commitEnrolment({
      ...(registration.device_id
        ? {}
        : {
            device: {
              id: deviceId,
              org_id: orgId,
              name: registration.model ? `${registration.model} ${registration.serial}` : registration.serial,
              tags: [],
              metadata: { serial: registration.serial, ...(registration.model ? { model: registration.model } : {}) },
              status: 'enabled',
              // a secret nobody knows: the device proves itself with its certificate
              secret_hash: this.keys.hashDeviceSecret(randomToken(32)),
              created_at: iso(now),
              updated_at: iso(now),
            },
          }),
      channelIds: registration.channel_ids,
      groupIds: registration.group_ids,
      certificate: {
        serial: cert.serial,
        org_id: orgId,
        device_id: deviceId,
        registration_id: registration.id,
        fingerprint: cert.fingerprint,
        key_fingerprint: csr.fingerprint,
        request_hash: csr.requestHash,
        certificate: cert.pem,
        not_before: cert.notBefore.toISOString(),
        not_after: cert.notAfter.toISOString(),
        status: 'active',
        revoked_at: null,
        revocation_reason: null,
        replaces: how.replaces ?? null,
        created_at: iso(now),
      },
      registration: {
        id: registration.id,
        set: renewal ? { key_fingerprint: csr.fingerprint, updated_at: iso(now) } : { state: 'enrolled', device_id: deviceId, key_fingerprint: csr.fingerprint, enrolled_at: iso(now), updated_at: iso(now) },
      },
      ...(how.token ? { token: how.token } : {}),
      ...(renewal ? { supersede: { keep: how.replaces! } } : {}),
      event: this.event(orgId, registration.id, renewal ? 'renew' : 'enrol', caller, 'ok', undefined, renewal ? `certificate ${cert.serial} renews ${how.replaces}` : `certificate ${cert.serial}`),
    });
    if (!committed) return attempt.refuse('enrolment.token_used', 'The enrolment token was used by another enrolment at the same time');
    // a renewal may have revoked an earlier renewal's certificate, never used: its cached answer goes
    this.access.invalidateDevice(deviceId);
    this.metrics?.enrolments.inc({ outcome: renewal ? 'renewed' : 'issued', code: '' });
    if (!renewal) {
      const data = { serial: registration.serial, registration_id: registration.id, certificate_serial: cert.serial, transport: caller.transport };
      if (!registration.device_id) this.events.record({ orgId, type: 'device.created', actor: { kind: 'system' }, subject: { kind: 'device', id: deviceId }, data: { ...data, by: 'enrolment' } });
      this.events.record({ orgId, type: 'device.enrolled', actor: { kind: 'device', id: deviceId }, subject: { kind: 'device', id: deviceId }, data });
    }
    this.log.info({ orgId, registrationId: registration.id, deviceId, serial: cert.serial, transport: caller.transport, ...(renewal ? { replaces: how.replaces } : {}) }, renewal ? 'device certificate renewed' : 'device enrolled');
    return {
      certificate: cert.pem,
      chain: [issuer.certificatePem, root.certificatePem],
      serial: cert.serial,
      not_after: cert.notAfter.toISOString(),
      org_id: orgId,
      device_id: deviceId,
      registration_id: registration.id,
      channel_ids: registration.channel_ids,
      root_ca: root.certificatePem,
    };
  }

  // --- certificates

  listCertificates(orgId: string, q: Paged & { device_id?: string; status?: 'active' | 'revoked'; expiring_before?: string }): Promise<{ total: number; items: DeviceCertificate[] }> {
    return this.store.listCertificates(orgId, q);
  }

  async certificate(orgId: string, serial: string): Promise<DeviceCertificate> {
    const c = /^[0-9a-f]{1,40}$/.test(serial) ? await this.store.certificate(orgId, serial) : undefined;
    if (!c) throw new AppError('certificate.not_found');
    return c;
  }

  /** Revokes a certificate: its device's sessions that use it end on every node, and it cannot connect with it again. */
  async revokeCertificate(orgId: string, serial: string, reason: RevocationReason, caller: Caller): Promise<DeviceCertificate> {
    const c = await this.certificate(orgId, serial);
    if (c.status === 'active') {
      await this.store.revokeCertificates(orgId, { serial }, iso(this.clock.now()), reason);
      this.access.invalidateDevice(c.device_id);
      await this.audit(orgId, c.registration_id ?? undefined, 'revoke_certificate', caller, 'ok', undefined, `${serial} (${reason})`);
      this.events.record({ orgId, type: 'certificate.revoked', actor: actorOf(caller), subject: { kind: 'device', id: c.device_id }, data: { serial, reason } });
      this.log.info({ orgId, serial, deviceId: c.device_id, reason, actor: caller.actor }, 'certificate revoked');
    }
    return this.certificate(orgId, serial);
  }

  listEvents(orgId: string, q: Paged & { outcome?: 'ok' | 'refused'; registration_id?: string; action?: string }): Promise<{ total: number; items: IdentityEvent[] }> {
    return this.store.listEvents(orgId, q);
  }

  private event(orgId: string | null, registrationId: string | undefined, action: string, caller: Caller, outcome: 'ok' | 'refused', code: string | undefined, detail: string) {
    return { id: uuidv7(this.clock.now()), org_id: orgId, registration_id: registrationId ?? null, action, outcome, code: code ?? null, detail: detail.slice(0, 500), actor: caller.actor, remote: caller.remote ?? null, created_at: iso(this.clock.now()) };
  }

  private async audit(orgId: string | null, registrationId: string | undefined, action: string, caller: Caller, outcome: 'ok' | 'refused', code: string | undefined, detail: string): Promise<void> {
    await this.store.addEvent(this.event(orgId, registrationId, action, caller, outcome, code, detail));
  }
}

/** The fleet event actor of an identity caller (`user:<id>` from the API; anything else is the platform's doing). */
function actorOf(caller: Caller): Actor {
  return caller.actor.startsWith('user:') ? { kind: 'user', id: caller.actor.slice('user:'.length) } : { kind: 'system' };
}

/** The serial a factory certificate's subject names (node:crypto's one `key=value` a line): serialNumber, else CN. */
function subjectSerial(subject: string): string | undefined {
  const fields = new Map(subject.split('\n').map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)] as const));
  const serial = fields.get('serialNumber') ?? fields.get('CN');
  return serial && serial.length <= 128 ? serial : undefined;
}

/** Whether the CA (PEM) issued and signed the certificate. */
function signedBy(cert: X509Certificate, caPem: string): boolean {
  try {
    const ca = new X509Certificate(caPem);
    return cert.checkIssued(ca) && cert.verify(ca.publicKey);
  } catch {
    return false;
  }
}

/** A manufacturer's CA certificate: one PEM certificate of a CA, valid now. */
function readCaCertificate(pem: string, now: number): X509Certificate {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(pem);
  } catch {
    throw new AppError('manufacturer_ca.invalid', 'certificate: one PEM certificate (BEGIN CERTIFICATE)');
  }
  if (!cert.ca) throw new AppError('manufacturer_ca.invalid', 'The certificate is not a CA (basic constraints)');
  if (Date.parse(cert.validTo) <= now) throw new AppError('manufacturer_ca.invalid', `The CA expired at ${new Date(cert.validTo).toISOString()}`);
  return cert;
}

function checkedSerials(serials: string[]): string[] {
  const list = [...new Set(serials)];
  if (list.length === 0) throw new AppError('request.invalid', 'serials: at least one serial or pattern (`*` matches any run of characters)');
  if (list.length > maxManufacturerSerials) throw new AppError('request.invalid', `serials: at most ${maxManufacturerSerials} entries, got ${list.length}`);
  const bad = list.find((s) => s.length === 0 || s.length > 128 || /\s/.test(s));
  if (bad !== undefined) throw new AppError('request.invalid', `serials: ${JSON.stringify(bad)} is not a serial or pattern (1 to 128 characters, no white space)`);
  return list;
}

/** The DER of a PEM or base64 request, for its hash (what the device sent, whatever its wrapping). */
function pemToDerLoose(text: string): Uint8Array {
  return text.includes('-----BEGIN') ? pemToDer(text) : Buffer.from(text.replace(/\s+/g, ''), 'base64');
}
