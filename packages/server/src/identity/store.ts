// Storage of device identity: the CAs, registrations, enrolment tokens, issued certificates and
// the audit trail (migration 12). Every query of an organization's rows is scoped by it.
import { sql } from 'kysely';
import { jsonColumn, type Database } from '../db/index.js';
import type { CertificateAuthoritiesTable, DeviceCertificatesTable, DeviceRegistrationsTable, DevicesTable, EnrolmentTokensTable, IdentityEventsTable, ManufacturerCasTable, RegistrationState } from '../db/schema.js';

export interface Registration {
  id: string;
  org_id: string;
  serial: string;
  model: string;
  key_fingerprint: string | null;
  channel_ids: string[];
  group_ids: string[];
  state: RegistrationState;
  device_id: string | null;
  enrolled_at: string | null;
  created_at: string;
  updated_at: string;
}

export type EnrolmentToken = Omit<EnrolmentTokensTable, 'token_hash'>;

export type DeviceCertificate = Omit<DeviceCertificatesTable, 'request_hash'>;

export type IdentityEvent = IdentityEventsTable;

export interface ManufacturerCa extends Omit<ManufacturerCasTable, 'serials' | 'channel_ids' | 'group_ids'> {
  serials: string[];
  channel_ids: string[];
  group_ids: string[];
}

function toManufacturerCa(row: ManufacturerCasTable): ManufacturerCa {
  return { ...row, serials: jsonColumn<string[]>(row.serials), channel_ids: jsonColumn<string[]>(row.channel_ids), group_ids: jsonColumn<string[]>(row.group_ids) };
}

const encodeLists = <T extends { serials?: string[]; channel_ids?: string[]; group_ids?: string[] }>(row: T) => ({
  ...row,
  ...(row.serials ? { serials: JSON.stringify(row.serials) } : {}),
  ...(row.channel_ids ? { channel_ids: JSON.stringify(row.channel_ids) } : {}),
  ...(row.group_ids ? { group_ids: JSON.stringify(row.group_ids) } : {}),
});

function toRegistration(row: DeviceRegistrationsTable): Registration {
  return { ...row, channel_ids: jsonColumn<string[]>(row.channel_ids), group_ids: jsonColumn<string[]>(row.group_ids) };
}

function toToken({ token_hash: _, ...row }: EnrolmentTokensTable): EnrolmentToken {
  return row;
}

function toCertificate({ request_hash: _, ...row }: DeviceCertificatesTable): DeviceCertificate {
  return row;
}

export interface Paged {
  offset: number;
  limit: number;
}

export class IdentityStore {
  constructor(readonly db: Database) {}

  private get k() {
    return this.db.kysely;
  }

  // --- certificate authorities

  async root(): Promise<CertificateAuthoritiesTable | undefined> {
    return this.k.selectFrom('certificate_authorities').selectAll().where('kind', '=', 'root').executeTakeFirst();
  }

  async issuing(orgId: string): Promise<CertificateAuthoritiesTable | undefined> {
    return this.k.selectFrom('certificate_authorities').selectAll().where('org_id', '=', orgId).executeTakeFirst();
  }

  async allIssuing(): Promise<CertificateAuthoritiesTable[]> {
    return this.k.selectFrom('certificate_authorities').selectAll().where('kind', '=', 'issuing').execute();
  }

  /** Stores a CA unless one of its kind (the root, or the organization's) exists; returns the one kept. */
  async addCa(row: CertificateAuthoritiesTable): Promise<CertificateAuthoritiesTable> {
    await this.k.insertInto('certificate_authorities').values(row).onConflict((oc) => oc.doNothing()).execute();
    const kept = row.kind === 'root' ? await this.root() : await this.issuing(row.org_id!);
    return kept!;
  }

  /** The next CRL number of a CA (monotonic, RFC 5280 §5.2.3). */
  async nextCrlNumber(caId: string): Promise<number> {
    await this.k.updateTable('certificate_authorities').set({ crl_number: sql`crl_number + 1` }).where('id', '=', caId).execute();
    const row = await this.k.selectFrom('certificate_authorities').select('crl_number').where('id', '=', caId).executeTakeFirstOrThrow();
    return Number(row.crl_number);
  }

  // --- registrations

  async insertRegistrations(rows: DeviceRegistrationsTable[]): Promise<void> {
    const encoded = rows.map((r) => ({ ...r, channel_ids: JSON.stringify(r.channel_ids), group_ids: JSON.stringify(r.group_ids) }));
    await this.k.transaction().execute(async (trx) => {
      for (let i = 0; i < encoded.length; i += 200) await trx.insertInto('device_registrations').values(encoded.slice(i, i + 200)).execute();
    });
  }

  /** The serials among `serials` the organization has registered already. */
  async takenSerials(orgId: string, serials: string[]): Promise<string[]> {
    const taken: string[] = [];
    for (let i = 0; i < serials.length; i += 500) {
      const rows = await this.k.selectFrom('device_registrations').select('serial').where('org_id', '=', orgId).where('serial', 'in', serials.slice(i, i + 500)).execute();
      taken.push(...rows.map((r) => r.serial));
    }
    return taken;
  }

  async registration(orgId: string, id: string): Promise<Registration | undefined> {
    const row = await this.k.selectFrom('device_registrations').selectAll().where('org_id', '=', orgId).where('id', '=', id).executeTakeFirst();
    return row && toRegistration(row);
  }

  async registrationBySerial(orgId: string, serial: string): Promise<Registration | undefined> {
    const row = await this.k.selectFrom('device_registrations').selectAll().where('org_id', '=', orgId).where('serial', '=', serial).executeTakeFirst();
    return row && toRegistration(row);
  }

  /** Registrations holding this key, in any organization (a key is a device's, wherever it was registered). */
  async registrationsByKey(keyFingerprint: string): Promise<Registration[]> {
    const rows = await this.k.selectFrom('device_registrations').selectAll().where('key_fingerprint', '=', keyFingerprint).limit(2).execute();
    return rows.map(toRegistration);
  }

  async listRegistrations(orgId: string, q: Paged & { state?: RegistrationState; serial?: string }): Promise<{ total: number; items: Registration[] }> {
    let base = this.k.selectFrom('device_registrations').where('org_id', '=', orgId);
    if (q.state) base = base.where('state', '=', q.state);
    if (q.serial) base = base.where('serial', '=', q.serial);
    const { n } = await base.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    const rows = await base.selectAll().orderBy('created_at', 'desc').orderBy('id', 'desc').offset(q.offset).limit(q.limit).execute();
    return { total: Number(n), items: rows.map(toRegistration) };
  }

  /** Sets the fields of a registration if it is in one of `from`; whether it was. */
  async moveRegistration(orgId: string, id: string, from: RegistrationState[], set: Partial<DeviceRegistrationsTable>): Promise<boolean> {
    const res = await this.k.updateTable('device_registrations').set(set).where('org_id', '=', orgId).where('id', '=', id).where('state', 'in', from).executeTakeFirst();
    return Number(res.numUpdatedRows) === 1;
  }

  async deleteRegistration(orgId: string, id: string): Promise<boolean> {
    const res = await this.k.deleteFrom('device_registrations').where('org_id', '=', orgId).where('id', '=', id).executeTakeFirst();
    return Number(res.numDeletedRows) === 1;
  }

  // --- enrolment tokens

  async insertToken(row: EnrolmentTokensTable): Promise<void> {
    await this.k.insertInto('enrolment_tokens').values(row).execute();
  }

  async tokenByHash(hash: string): Promise<EnrolmentTokensTable | undefined> {
    return this.k.selectFrom('enrolment_tokens').selectAll().where('token_hash', '=', hash).executeTakeFirst();
  }

  async listTokens(orgId: string, q: Paged): Promise<{ total: number; items: EnrolmentToken[] }> {
    const base = this.k.selectFrom('enrolment_tokens').where('org_id', '=', orgId);
    const { n } = await base.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    const rows = await base.selectAll().orderBy('created_at', 'desc').orderBy('id', 'desc').offset(q.offset).limit(q.limit).execute();
    return { total: Number(n), items: rows.map(toToken) };
  }

  async deleteToken(orgId: string, id: string): Promise<boolean> {
    const res = await this.k.deleteFrom('enrolment_tokens').where('org_id', '=', orgId).where('id', '=', id).executeTakeFirst();
    return Number(res.numDeletedRows) === 1;
  }

  // --- certificates

  async requestSeen(requestHash: string): Promise<boolean> {
    return (await this.k.selectFrom('device_certificates').select('serial').where('request_hash', '=', requestHash).executeTakeFirst()) !== undefined;
  }

  async insertCertificate(row: DeviceCertificatesTable): Promise<void> {
    await this.k.insertInto('device_certificates').values(row).execute();
  }

  async certificate(orgId: string, serial: string): Promise<DeviceCertificate | undefined> {
    const row = await this.k.selectFrom('device_certificates').selectAll().where('org_id', '=', orgId).where('serial', '=', serial).executeTakeFirst();
    return row && toCertificate(row);
  }

  /** A certificate by its serial alone (a device presents it: its organization follows from it). */
  async certificateBySerial(serial: string): Promise<DeviceCertificate | undefined> {
    const row = await this.k.selectFrom('device_certificates').selectAll().where('serial', '=', serial).executeTakeFirst();
    return row && toCertificate(row);
  }

  async listCertificates(orgId: string, q: Paged & { device_id?: string; status?: 'active' | 'revoked'; expiring_before?: string }): Promise<{ total: number; items: DeviceCertificate[] }> {
    let base = this.k.selectFrom('device_certificates').where('org_id', '=', orgId);
    if (q.device_id) base = base.where('device_id', '=', q.device_id);
    if (q.status) base = base.where('status', '=', q.status);
    if (q.expiring_before) base = base.where('not_after', '<', q.expiring_before);
    const { n } = await base.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    const rows = await base.selectAll().orderBy('created_at', 'desc').orderBy('serial', 'desc').offset(q.offset).limit(q.limit).execute();
    return { total: Number(n), items: rows.map(toCertificate) };
  }

  /** Revokes the active certificates matching; the ones it revoked. */
  async revokeCertificates(orgId: string, where: { serial?: string; device_id?: string }, now: string, reason: string): Promise<{ serial: string; device_id: string }[]> {
    let q = this.k.updateTable('device_certificates').set({ status: 'revoked', revoked_at: now, revocation_reason: reason }).where('org_id', '=', orgId).where('status', '=', 'active');
    if (where.serial) q = q.where('serial', '=', where.serial);
    if (where.device_id) q = q.where('device_id', '=', where.device_id);
    return q.returning(['serial', 'device_id']).execute();
  }

  async revokedOf(orgId: string): Promise<{ serial: string; revoked_at: string; revocation_reason: string | null }[]> {
    const rows = await this.k.selectFrom('device_certificates').select(['serial', 'revoked_at', 'revocation_reason']).where('org_id', '=', orgId).where('status', '=', 'revoked').execute();
    return rows.map((r) => ({ serial: r.serial, revoked_at: r.revoked_at!, revocation_reason: r.revocation_reason }));
  }

  /** Certificates by status, and the active ones (not expired at `now`) that expire before each of `before`. */
  async certificateCounts(now: string, before: string[]): Promise<{ active: number; revoked: number; expiring: number[] }> {
    const byStatus = await this.k.selectFrom('device_certificates').select(['status', (eb) => eb.fn.countAll<number>().as('n')]).groupBy('status').execute();
    const expiring: number[] = [];
    for (const b of before) {
      const { n } = await this.k.selectFrom('device_certificates').select((eb) => eb.fn.countAll<number>().as('n')).where('status', '=', 'active').where('not_after', '>', now).where('not_after', '<=', b).executeTakeFirstOrThrow();
      expiring.push(Number(n));
    }
    const count = (status: string) => Number(byStatus.find((r) => r.status === status)?.n ?? 0);
    return { active: count('active'), revoked: count('revoked'), expiring };
  }

  /**
   * Everything an enrolment writes, in one transaction (one commit instead of seven: on SQLite each
   * rewrote the pages it touched into the WAL, bench/enrol): the device when it is new, with its
   * connections and groups (those still there), the certificate, the registration enrolled, the
   * token spent, the audit row. False, with nothing written, when the token was spent meanwhile.
   */
  async commitEnrolment(e: {
    device?: DevicesTable;
    channelIds: string[];
    groupIds: string[];
    certificate: DeviceCertificatesTable;
    registration: { id: string; set: Partial<DeviceRegistrationsTable> };
    token?: { id: string };
    /** A renewal: the device's other active certificates but `keep` (an earlier renewal's, never used) are revoked as superseded. */
    supersede?: { keep: string };
    event: IdentityEventsTable;
  }): Promise<boolean> {
    const spent = new Error('token spent');
    try {
      await this.k.transaction().execute(async (trx) => {
        const now = e.certificate.created_at;
        if (e.token) {
          const used = await trx.updateTable('enrolment_tokens').set({ used_at: now, registration_id: e.registration.id }).where('id', '=', e.token.id).where('used_at', 'is', null).executeTakeFirst();
          if (Number(used.numUpdatedRows) !== 1) throw spent;
        }
        if (e.device) {
          const d = e.device;
          await trx.insertInto('devices').values({ ...d, tags: JSON.stringify(d.tags), metadata: JSON.stringify(d.metadata) }).execute();
          const orgId = d.org_id;
          const channels = e.channelIds.length ? (await trx.selectFrom('channels').select('id').where('org_id', '=', orgId).where('id', 'in', e.channelIds).execute()).map((r) => r.id) : [];
          const rows = channels.flatMap((channel_id) => (['publish', 'subscribe'] as const).map((type) => ({ org_id: orgId, channel_id, device_id: d.id, type, created_at: now })));
          if (rows.length) await trx.insertInto('connections').values(rows).onConflict((oc) => oc.doNothing()).execute();
          const groups = e.groupIds.length ? (await trx.selectFrom('groups').select('id').where('org_id', '=', orgId).where('id', 'in', e.groupIds).execute()).map((r) => r.id) : [];
          if (groups.length) await trx.insertInto('group_devices').values(groups.map((group_id) => ({ group_id, device_id: d.id, created_at: now }))).onConflict((oc) => oc.doNothing()).execute();
        }
        if (e.supersede) {
          await trx.updateTable('device_certificates').set({ status: 'revoked', revoked_at: now, revocation_reason: 'superseded' })
            .where('device_id', '=', e.certificate.device_id).where('status', '=', 'active').where('serial', '!=', e.supersede.keep).execute();
        }
        await trx.insertInto('device_certificates').values(e.certificate).execute();
        await trx.updateTable('device_registrations').set(e.registration.set).where('id', '=', e.registration.id).execute();
        await trx.insertInto('identity_events').values(e.event).execute();
      });
      return true;
    } catch (err) {
      if (err === spent) return false;
      throw err;
    }
  }

  // --- manufacturer CAs

  async insertManufacturerCa(row: ManufacturerCa): Promise<void> {
    await this.k.insertInto('manufacturer_cas').values(encodeLists(row)).execute();
  }

  async manufacturerCa(orgId: string, id: string): Promise<ManufacturerCa | undefined> {
    const row = await this.k.selectFrom('manufacturer_cas').selectAll().where('org_id', '=', orgId).where('id', '=', id).executeTakeFirst();
    return row && toManufacturerCa(row);
  }

  async manufacturerCaByFingerprint(orgId: string, fingerprint: string): Promise<ManufacturerCa | undefined> {
    const row = await this.k.selectFrom('manufacturer_cas').selectAll().where('org_id', '=', orgId).where('fingerprint', '=', fingerprint).executeTakeFirst();
    return row && toManufacturerCa(row);
  }

  /** Every organization's manufacturer CAs of this subject: the candidates for a factory certificate's issuer. */
  async manufacturerCasBySubject(subject: string): Promise<ManufacturerCa[]> {
    return (await this.k.selectFrom('manufacturer_cas').selectAll().where('subject', '=', subject).execute()).map(toManufacturerCa);
  }

  async listManufacturerCas(orgId: string, q: Paged): Promise<{ total: number; items: ManufacturerCa[] }> {
    const base = this.k.selectFrom('manufacturer_cas').where('org_id', '=', orgId);
    const { n } = await base.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    const rows = await base.selectAll().orderBy('created_at', 'desc').orderBy('id', 'desc').offset(q.offset).limit(q.limit).execute();
    return { total: Number(n), items: rows.map(toManufacturerCa) };
  }

  async updateManufacturerCa(orgId: string, id: string, set: { name?: string; serials?: string[]; channel_ids?: string[]; group_ids?: string[]; updated_at: string }): Promise<boolean> {
    const r = await this.k.updateTable('manufacturer_cas').set(encodeLists(set)).where('org_id', '=', orgId).where('id', '=', id).executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  }

  async deleteManufacturerCa(orgId: string, id: string): Promise<boolean> {
    const r = await this.k.deleteFrom('manufacturer_cas').where('org_id', '=', orgId).where('id', '=', id).executeTakeFirst();
    return Number(r.numDeletedRows) === 1;
  }

  // --- audit

  async addEvent(row: IdentityEventsTable): Promise<void> {
    await this.k.insertInto('identity_events').values(row).execute();
  }

  async listEvents(orgId: string, q: Paged & { outcome?: 'ok' | 'refused'; registration_id?: string; action?: string }): Promise<{ total: number; items: IdentityEvent[] }> {
    let base = this.k.selectFrom('identity_events').where('org_id', '=', orgId);
    if (q.action) base = base.where('action', '=', q.action);
    if (q.outcome) base = base.where('outcome', '=', q.outcome);
    if (q.registration_id) base = base.where('registration_id', '=', q.registration_id);
    const { n } = await base.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    const rows = await base.selectAll().orderBy('created_at', 'desc').orderBy('id', 'desc').offset(q.offset).limit(q.limit).execute();
    return { total: Number(n), items: rows };
  }
}
