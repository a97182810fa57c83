/**
 * The repository contract: what every storage implementation must do, written once and run
 * against each (src/db/sqlite.test.ts, src/db/postgres.test.ts). The point is that SQLite and
 * PostgreSQL behave identically behind the same repositories: same values back, same filters,
 * same order, same cascades.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { sql } from 'kysely';
import { randomToken, uuidv7 } from '../core/ids.js';
import { openTestDatabase, type TestDatabase, type TestDatabaseKind } from '../../test/helpers/database.js';
import type { Database } from './database.js';
import type { ListQuery } from './list.js';
import type { Tables, UsersTable } from './schema.js';
import { UserRepository } from '../users/repository.js';
import { OrgRepository } from '../orgs/repository.js';
import { DeviceRepository, type Device, type DeviceListQuery, type NewDeviceRow } from '../devices/repository.js';
import { ChannelRepository, type Channel } from '../channels/repository.js';
import { GroupRepository, type Group } from '../groups/repository.js';
import { ConnectionRepository } from '../connections/repository.js';
import { TokenRepository } from '../auth/repository.js';
import { createAccessStore, type AccessStore } from '../auth/access-store.js';
import type { Action } from '../auth/permissions.js';

export interface ContractOptions {
  /** Why this implementation cannot be tested here (shown as the skip reason). */
  skip?: string;
}

const epoch = Date.UTC(2026, 0, 1);

export function runRepositoryContract(kind: TestDatabaseKind, options: ContractOptions = {}): void {
  describe(`repository contract on ${kind}`, { skip: options.skip ?? false }, () => {
    let t: TestDatabase;
    let db: Database;
    let users: UserRepository;
    let orgs: OrgRepository;
    let devices: DeviceRepository;
    let channels: ChannelRepository;
    let groups: GroupRepository;
    let connections: ConnectionRepository;
    let tokens: TokenRepository;
    let access: AccessStore;

    before(async () => {
      t = await openTestDatabase(kind);
      db = t.db;
      users = new UserRepository(db);
      orgs = new OrgRepository(db);
      devices = new DeviceRepository(db);
      channels = new ChannelRepository(db);
      groups = new GroupRepository(db);
      connections = new ConnectionRepository(db);
      tokens = new TokenRepository(db);
      access = createAccessStore(db);
    });
    after(() => t?.cleanup());

    // Fixtures. Every row gets a later timestamp than the one before, one second apart.
    let seconds = 0;
    const nextTime = (): string => new Date(epoch + ++seconds * 1000).toISOString();
    let seq = 0;

    async function newUser(email = `user${++seq}@example.com`): Promise<UsersTable> {
      const now = nextTime();
      const row: UsersTable = { id: uuidv7(epoch + seconds * 1000), email, name: '', password_hash: 'hash', role: 'user', created_at: now, updated_at: now };
      assert.equal(await users.insert(row), true);
      return row;
    }

    async function newOrg(owner?: UsersTable): Promise<{ id: string; owner: UsersTable }> {
      const o = owner ?? (await newUser());
      const now = nextTime();
      const id = uuidv7(epoch + seconds * 1000);
      await orgs.insertWithOwner({ id, name: `org ${id}`, created_at: now, updated_at: now }, o.id);
      return { id, owner: o };
    }

    function deviceRow(orgId: string, fields: Partial<NewDeviceRow> = {}): NewDeviceRow {
      const now = nextTime();
      return { id: uuidv7(epoch + seconds * 1000), org_id: orgId, name: 'device', tags: [], metadata: {}, status: 'enabled', secret_hash: randomToken(), created_at: now, updated_at: now, ...fields };
    }

    async function newDevice(orgId: string, fields: Partial<NewDeviceRow> = {}): Promise<NewDeviceRow> {
      const row = deviceRow(orgId, fields);
      await devices.insertMany([row]);
      return row;
    }

    async function newChannel(orgId: string, fields: Partial<Channel> = {}): Promise<Channel> {
      const now = nextTime();
      const row: Channel = { id: uuidv7(epoch + seconds * 1000), org_id: orgId, name: 'channel', tags: [], metadata: {}, content_type: 'application/senml+json', created_at: now, updated_at: now, ...fields };
      await channels.insertMany([row]);
      return row;
    }

    async function newGroup(orgId: string, fields: Partial<Group> = {}): Promise<Group> {
      const now = nextTime();
      const row: Group = { id: uuidv7(epoch + seconds * 1000), org_id: orgId, name: 'group', description: '', tags: [], metadata: {}, created_at: now, updated_at: now, ...fields };
      await groups.insertMany([row]);
      return row;
    }

    function publicDevice(row: NewDeviceRow): Device {
      const { secret_hash: _, ...device } = row;
      return device;
    }

    const everything: DeviceListQuery = { offset: 0, limit: 1000, sort: 'created_at', dir: 'asc' };
    const names = (page: { items: { name: string }[] }): string[] => page.items.map((d) => d.name);

    async function countRows(table: keyof Tables, column: string, value: string): Promise<number> {
      const { n } = await db.kysely
        .selectFrom(table)
        .where(sql.ref(column), '=', value)
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .executeTakeFirstOrThrow();
      return Number(n);
    }

    describe('users', () => {
      test('a user comes back as inserted, timestamps as ISO strings', async () => {
        const row = await newUser();
        const { password_hash: _, ...expected } = row;
        assert.deepEqual(await users.findById(row.id), expected);
        assert.deepEqual(await users.findByEmailWithHash(row.email), row);
        assert.equal(await users.findHashById(row.id), 'hash');
        assert.equal(await users.findById(uuidv7()), undefined);
      });

      test('an email is taken only once', async () => {
        const first = await newUser();
        const before = await users.count();
        const clash = { ...first, id: uuidv7() };
        assert.equal(await users.insert(clash), false);
        assert.equal(await users.count(), before);
        assert.equal(await users.findById(clash.id), undefined);
      });

      test('the list pages in creation order and filters by exact email', async () => {
        const all = await users.list(0, 1000);
        assert.equal(all.total, all.items.length);
        const created = all.items.map((u) => u.created_at);
        assert.deepEqual([...created].sort(), created);
        const second = await users.list(1, 1);
        assert.deepEqual(second.items, all.items.slice(1, 2));
        const u = await newUser('exact@example.com');
        const hit = await users.list(0, 10, 'exact@example.com');
        assert.deepEqual({ total: hit.total, ids: hit.items.map((x) => x.id) }, { total: 1, ids: [u.id] });
        assert.equal((await users.list(0, 10, 'exact@example')).total, 0);
      });

      test('update changes the given fields and updated_at only', async () => {
        const u = await newUser();
        const now = nextTime();
        const updated = await users.update(u.id, { name: 'Ada', role: 'admin' }, now);
        assert.deepEqual(updated, { id: u.id, email: u.email, name: 'Ada', role: 'admin', created_at: u.created_at, updated_at: now });
        assert.equal(await users.update(uuidv7(), { name: 'nobody' }, now), undefined);
      });

      test('deleting a user removes its memberships and refresh tokens', async () => {
        const u = await newUser();
        const org = await newOrg();
        assert.equal(await orgs.addMember(org.id, u.id, 'viewer', nextTime()), true);
        await tokens.insertRefresh({ id: uuidv7(), user_id: u.id, family_id: uuidv7(), token_hash: randomToken(), expires_at: nextTime(), revoked_at: null, created_at: nextTime() });
        assert.equal(await users.delete(u.id), true);
        assert.equal(await users.delete(u.id), false);
        assert.equal(await orgs.roleOf(org.id, u.id), undefined);
        assert.equal(await countRows('refresh_tokens', 'user_id', u.id), 0);
      });
    });

    describe('organizations', () => {
      test('an organization is created with its owner', async () => {
        const org = await newOrg();
        const found = await orgs.findById(org.id);
        assert.equal(found?.id, org.id);
        assert.match(found!.created_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
        assert.equal(await orgs.roleOf(org.id, org.owner.id), 'owner');
        assert.equal(await orgs.countOwners(org.id), 1);
        assert.equal(await orgs.findById(uuidv7()), undefined);
      });

      test('members see their organizations with their role; all shows the rest without one', async () => {
        const alice = await newUser();
        const mine = await newOrg(alice);
        const other = await newOrg();
        const own = await orgs.listForUser(alice.id, false, 0, 100);
        assert.deepEqual(own.items.map((o) => [o.id, o.role]), [[mine.id, 'owner']]);
        assert.equal(own.total, 1);
        const all = await orgs.listForUser(alice.id, true, 0, 1000);
        const seen = new Map(all.items.map((o) => [o.id, o]));
        assert.equal(seen.get(mine.id)?.role, 'owner');
        assert.ok(seen.has(other.id));
        assert.equal('role' in seen.get(other.id)!, false);
        const byName = await orgs.listForUser(alice.id, true, 0, 10, `org ${other.id}`);
        assert.deepEqual(byName.items.map((o) => o.id), [other.id]);
      });

      test('membership: a user joins once, changes role and leaves', async () => {
        const org = await newOrg();
        const bob = await newUser();
        const joined = nextTime();
        assert.equal(await orgs.addMember(org.id, bob.id, 'operator', joined), true);
        assert.equal(await orgs.addMember(org.id, bob.id, 'admin', nextTime()), false);
        assert.deepEqual(await orgs.getMember(org.id, bob.id), { user_id: bob.id, email: bob.email, name: '', role: 'operator', created_at: joined });
        await orgs.setMemberRole(org.id, bob.id, 'owner');
        assert.equal(await orgs.countOwners(org.id), 2);
        const members = await orgs.listMembers(org.id, 0, 10);
        assert.equal(members.total, 2);
        assert.deepEqual(members.items.map((m) => m.user_id), [org.owner.id, bob.id]);
        assert.deepEqual((await orgs.listMembers(org.id, 1, 1)).items.map((m) => m.user_id), [bob.id]);
        await orgs.removeMember(org.id, bob.id);
        assert.equal(await orgs.getMember(org.id, bob.id), undefined);
        assert.equal(await orgs.roleOf(org.id, bob.id), undefined);
      });

      test('update renames and sets updated_at', async () => {
        const org = await newOrg();
        const now = nextTime();
        const renamed = await orgs.update(org.id, { name: 'Renamed' }, now);
        assert.equal(renamed?.name, 'Renamed');
        assert.equal(renamed?.updated_at, now);
      });

      test('deleting an organization removes everything in it, and nothing of others', async () => {
        const org = await newOrg();
        const keep = await newOrg();
        const member = await newUser();
        await orgs.addMember(org.id, member.id, 'viewer', nextTime());
        const d = await newDevice(org.id);
        const c = await newChannel(org.id);
        const g = await newGroup(org.id);
        await groups.addDevices(g.id, [d.id], nextTime());
        await connections.connect(org.id, [d.id], [c.id], ['publish', 'subscribe'], nextTime());
        await tokens.insertPat({ id: uuidv7(), user_id: member.id, name: 'ci', token_hash: randomToken(), org_id: org.id, actions: ['devices:read'], expires_at: nextTime(), revoked_at: null, last_used_at: null, created_at: nextTime() });
        const kept = await newDevice(keep.id);

        assert.equal(await orgs.delete(org.id), true);
        assert.equal(await orgs.delete(org.id), false);
        assert.equal(await orgs.findById(org.id), undefined);
        for (const table of ['memberships', 'devices', 'channels', 'groups', 'connections', 'access_tokens'] as const) {
          assert.equal(await countRows(table, 'org_id', org.id), 0, `${table} of the deleted organization`);
        }
        assert.equal(await countRows('group_devices', 'group_id', g.id), 0);
        assert.ok(await users.findById(member.id), 'users outlive their organizations');
        assert.deepEqual(await devices.find(keep.id, kept.id), publicDevice(kept));
      });
    });

    describe('organization resources', () => {
      test('tags and metadata come back as JSON values', async () => {
        const org = await newOrg();
        const metadata = { floor: 2, ratio: 0.25, label: 'Küche ☕', on: true, off: false, none: null, nested: { list: [1, 'two', { three: 3 }], empty: {} } };
        const d = await newDevice(org.id, { tags: ['a', 'b c'], metadata });
        const c = await newChannel(org.id, { tags: ['x'], metadata });
        const g = await newGroup(org.id, { tags: ['y'], metadata, description: 'a group' });
        assert.deepEqual(await devices.find(org.id, d.id), publicDevice(d));
        assert.deepEqual(await channels.find(org.id, c.id), c);
        assert.deepEqual(await groups.find(org.id, g.id), g);
        // the listed form is the same as the found one
        assert.deepEqual((await devices.list(org.id, everything)).items, [publicDevice(d)]);
      });

      test('a resource of another organization is not found, changed or deleted', async () => {
        const mine = await newOrg();
        const theirs = await newOrg();
        const d = await newDevice(mine.id, { name: 'mine' });
        const c = await newChannel(mine.id);
        const g = await newGroup(mine.id);
        assert.equal(await devices.find(theirs.id, d.id), undefined);
        assert.equal(await channels.find(theirs.id, c.id), undefined);
        assert.equal(await groups.find(theirs.id, g.id), undefined);
        assert.equal(await devices.update(theirs.id, d.id, { name: 'stolen' }, nextTime()), undefined);
        assert.equal(await devices.setSecretHash(theirs.id, d.id, 'stolen', nextTime()), false);
        assert.equal(await devices.delete(theirs.id, d.id), false);
        assert.equal(await channels.delete(theirs.id, c.id), false);
        assert.equal(await groups.delete(theirs.id, g.id), false);
        assert.deepEqual(await devices.find(mine.id, d.id), publicDevice(d));
        assert.equal((await devices.list(theirs.id, everything)).total, 0);
        assert.deepEqual(await devices.missing(theirs.id, [d.id]), [d.id]);
      });

      test('update applies the given fields and sets updated_at', async () => {
        const org = await newOrg();
        const d = await newDevice(org.id, { name: 'before', tags: ['t'], metadata: { a: 1 } });
        const now = nextTime();
        const updated = await devices.update(org.id, d.id, { name: 'after', metadata: { b: [true] }, tags: undefined }, now);
        assert.deepEqual(updated, { ...publicDevice(d), name: 'after', metadata: { b: [true] }, updated_at: now });
        const disabled = await devices.update(org.id, d.id, { status: 'disabled' }, nextTime());
        assert.equal(disabled?.status, 'disabled');
        assert.equal(await devices.update(org.id, uuidv7(), { name: 'ghost' }, nextTime()), undefined);
      });

      test('missing lists unknown and malformed ids, in the order given', async () => {
        const org = await newOrg();
        const a = await newDevice(org.id);
        const b = await newDevice(org.id);
        const unknown = uuidv7();
        assert.deepEqual(await devices.missing(org.id, [a.id, 'not-a-uuid', b.id, unknown]), ['not-a-uuid', unknown]);
        assert.deepEqual(await devices.missing(org.id, []), []);
      });

      test('insertMany is all or nothing', async () => {
        const org = await newOrg();
        const first = deviceRow(org.id, { name: 'first' });
        const clash = deviceRow(org.id, { name: 'clash', secret_hash: first.secret_hash });
        await assert.rejects(devices.insertMany([first, clash]));
        assert.equal((await devices.list(org.id, everything)).total, 0);
        // more rows than one INSERT carries
        const many = Array.from({ length: 450 }, (_, i) => deviceRow(org.id, { name: `bulk-${i}` }));
        await devices.insertMany(many);
        assert.equal((await devices.list(org.id, { ...everything, limit: 1 })).total, 450);
      });

      test('the secret hash can be replaced', async () => {
        const org = await newOrg();
        const d = await newDevice(org.id);
        assert.equal(await devices.setSecretHash(org.id, d.id, 'new-hash', nextTime()), true);
        assert.equal((await access.deviceBySecretHash('new-hash'))?.id, d.id);
        assert.equal(await access.deviceBySecretHash(d.secret_hash), undefined);
      });
    });

    describe('list filters', () => {
      test('name matches a case-insensitive substring, beyond ASCII too', async () => {
        const org = await newOrg();
        for (const name of ['Kitchen Sensor', 'kitchen light', 'Garage', 'Küche', 'ÄPFEL-Lager']) await newDevice(org.id, { name });
        assert.deepEqual(names(await devices.list(org.id, { ...everything, name: 'KITCHEN' })), ['Kitchen Sensor', 'kitchen light']);
        assert.deepEqual(names(await devices.list(org.id, { ...everything, name: 'en l' })), ['kitchen light']);
        assert.deepEqual(names(await devices.list(org.id, { ...everything, name: 'KÜCH' })), ['Küche']);
        assert.deepEqual(names(await devices.list(org.id, { ...everything, name: 'äpfel' })), ['ÄPFEL-Lager']);
      });

      test('% _ and \\ in a name filter are literal characters', async () => {
        const org = await newOrg();
        for (const name of ['100% done', '100 done', 'a_b', 'axb', 'back\\slash', 'backslash']) await newDevice(org.id, { name });
        assert.deepEqual(names(await devices.list(org.id, { ...everything, name: '%' })), ['100% done']);
        assert.deepEqual(names(await devices.list(org.id, { ...everything, name: '0% d' })), ['100% done']);
        assert.deepEqual(names(await devices.list(org.id, { ...everything, name: '_' })), ['a_b']);
        assert.deepEqual(names(await devices.list(org.id, { ...everything, name: '\\' })), ['back\\slash']);
      });

      test('tag matches one whole tag', async () => {
        const org = await newOrg();
        await newDevice(org.id, { name: 'a', tags: ['floor-1', 'hvac'] });
        await newDevice(org.id, { name: 'b', tags: ['floor-10'] });
        await newDevice(org.id, { name: 'c', tags: [] });
        assert.deepEqual(names(await devices.list(org.id, { ...everything, tag: 'floor-1' })), ['a']);
        assert.deepEqual(names(await devices.list(org.id, { ...everything, tag: 'hvac' })), ['a']);
        assert.deepEqual(names(await devices.list(org.id, { ...everything, tag: 'floor' })), []);
      });

      test('metadata matches each key by value and JSON type', async () => {
        const org = await newOrg();
        await newDevice(org.id, { name: 'number', metadata: { v: 2, room: 'lab' } });
        await newDevice(org.id, { name: 'fraction', metadata: { v: 2.5 } });
        await newDevice(org.id, { name: 'string', metadata: { v: '2', room: 'lab' } });
        await newDevice(org.id, { name: 'true', metadata: { v: true } });
        await newDevice(org.id, { name: 'string true', metadata: { v: 'true' } });
        await newDevice(org.id, { name: 'false', metadata: { v: false } });
        await newDevice(org.id, { name: 'null', metadata: { v: null } });
        await newDevice(org.id, { name: 'absent', metadata: { other: 1 } });
        await newDevice(org.id, { name: 'array', metadata: { v: [2, true, null, '2'] } });
        await newDevice(org.id, { name: 'object', metadata: { v: { v: 2 } } });
        await newDevice(org.id, { name: 'dotted', metadata: { 'a.b': 'x', "it's": 'y' } });
        const match = async (metadata: ListQuery['metadata']) => names(await devices.list(org.id, { ...everything, metadata }));
        assert.deepEqual(await match({ v: 2 }), ['number']);
        assert.deepEqual(await match({ v: 2.5 }), ['fraction']);
        assert.deepEqual(await match({ v: '2' }), ['string']);
        assert.deepEqual(await match({ v: true }), ['true']);
        assert.deepEqual(await match({ v: 'true' }), ['string true']);
        assert.deepEqual(await match({ v: false }), ['false']);
        assert.deepEqual(await match({ v: null }), ['null']);
        assert.deepEqual(await match({ v: 2, room: 'lab' }), ['number']);
        assert.deepEqual(await match({ room: 'lab' }), ['number', 'string']);
        assert.deepEqual(await match({ 'a.b': 'x' }), ['dotted']);
        assert.deepEqual(await match({ "it's": 'y' }), ['dotted']);
        assert.deepEqual(await match({ v: 3 }), []);
        assert.deepEqual(await match({}), (await match(undefined)));
      });

      test('devices filter by status and by group', async () => {
        const org = await newOrg();
        const on = await newDevice(org.id, { name: 'on' });
        const off = await newDevice(org.id, { name: 'off', status: 'disabled' });
        await newDevice(org.id, { name: 'loner' });
        const g = await newGroup(org.id);
        await groups.addDevices(g.id, [on.id, off.id], nextTime());
        assert.deepEqual(names(await devices.list(org.id, { ...everything, status: 'disabled' })), ['off']);
        assert.deepEqual(names(await devices.list(org.id, { ...everything, group_id: g.id })), ['on', 'off']);
        assert.deepEqual(names(await devices.list(org.id, { ...everything, group_id: g.id, status: 'enabled' })), ['on']);
      });

      test('channels and groups share the same filters', async () => {
        const org = await newOrg();
        await newChannel(org.id, { name: 'Temp_Readings', tags: ['t'], metadata: { unit: 'C' } });
        await newChannel(org.id, { name: 'TempXReadings', tags: ['u'], metadata: { unit: 'F' } });
        await newGroup(org.id, { name: '50% Floor', tags: ['t'], metadata: { level: 5 } });
        await newGroup(org.id, { name: '50 Floor', tags: ['u'], metadata: { level: '5' } });
        assert.deepEqual(names(await channels.list(org.id, { ...everything, name: 'p_r' })), ['Temp_Readings']);
        assert.deepEqual(names(await channels.list(org.id, { ...everything, tag: 'u' })), ['TempXReadings']);
        assert.deepEqual(names(await channels.list(org.id, { ...everything, metadata: { unit: 'C' } })), ['Temp_Readings']);
        assert.deepEqual(names(await groups.list(org.id, { ...everything, name: '0%' })), ['50% Floor']);
        assert.deepEqual(names(await groups.list(org.id, { ...everything, metadata: { level: 5 } })), ['50% Floor']);
      });
    });

    describe('sorting and paging', () => {
      test('names sort by code point, ties by id, in both directions', async () => {
        const org = await newOrg();
        const rows = [];
        for (const name of ['beta', 'Alpha', 'alpha', '_under', 'Zulu', 'beta', 'ábc', 'a b', 'ab']) rows.push(await newDevice(org.id, { name }));
        const expected = [...rows].sort((x, y) => (x.name < y.name ? -1 : x.name > y.name ? 1 : x.id < y.id ? -1 : 1)).map((r) => r.id);
        const asc = await devices.list(org.id, { ...everything, sort: 'name', dir: 'asc' });
        assert.deepEqual(asc.items.map((d) => d.id), expected);
        const desc = await devices.list(org.id, { ...everything, sort: 'name', dir: 'desc' });
        assert.deepEqual(desc.items.map((d) => d.id), [...expected].reverse());
      });

      test('pages of a sort join up to the whole list, with no row twice', async () => {
        const org = await newOrg();
        const sameTime = nextTime();
        for (let i = 0; i < 7; i++) await newDevice(org.id, { name: i % 2 ? 'odd' : 'even', created_at: sameTime, updated_at: sameTime });
        for (const sort of ['name', 'created_at', 'updated_at'] as const) {
          for (const dir of ['asc', 'desc'] as const) {
            const whole = await devices.list(org.id, { ...everything, sort, dir });
            const paged = [];
            for (let offset = 0; offset < 7; offset += 3) {
              const page = await devices.list(org.id, { ...everything, sort, dir, offset, limit: 3 });
              assert.equal(page.total, 7);
              paged.push(...page.items);
            }
            assert.deepEqual(paged.map((d) => d.id), whole.items.map((d) => d.id), `${sort} ${dir}`);
            assert.equal(new Set(paged.map((d) => d.id)).size, 7);
          }
        }
      });

      test('created_at and updated_at sort by time', async () => {
        const org = await newOrg();
        const first = await newDevice(org.id, { name: 'first' });
        await newDevice(org.id, { name: 'second' });
        await newDevice(org.id, { name: 'third' });
        assert.deepEqual(names(await devices.list(org.id, { ...everything, sort: 'created_at', dir: 'desc' })), ['third', 'second', 'first']);
        await devices.update(org.id, first.id, { name: 'first, touched' }, nextTime());
        assert.deepEqual(names(await devices.list(org.id, { ...everything, sort: 'updated_at', dir: 'desc' })), ['first, touched', 'third', 'second']);
      });

      test('an offset past the end gives an empty page with the total', async () => {
        const org = await newOrg();
        await newDevice(org.id);
        assert.deepEqual(await devices.list(org.id, { ...everything, offset: 5 }), { total: 1, items: [] });
      });
    });

    describe('groups', () => {
      test('adding a device twice keeps one membership; removing takes it out', async () => {
        const org = await newOrg();
        const g = await newGroup(org.id);
        const a = await newDevice(org.id);
        const b = await newDevice(org.id);
        await groups.addDevices(g.id, [a.id, a.id], nextTime());
        await groups.addDevices(g.id, [a.id, b.id], nextTime());
        await groups.addDevices(g.id, [], nextTime());
        assert.equal(await countRows('group_devices', 'group_id', g.id), 2);
        await groups.removeDevices(g.id, [a.id]);
        assert.deepEqual((await devices.list(org.id, { ...everything, group_id: g.id })).items.map((d) => d.id), [b.id]);
        assert.equal(await groups.delete(org.id, g.id), true);
        assert.equal(await countRows('group_devices', 'group_id', g.id), 0);
        assert.ok(await devices.find(org.id, b.id), 'deleting a group keeps its devices');
      });
    });

    describe('connections', () => {
      test('connecting twice, or with repeated ids, keeps one connection per type', async () => {
        const org = await newOrg();
        const d = await newDevice(org.id, { name: 'sensor' });
        const c = await newChannel(org.id, { name: 'telemetry' });
        await connections.connect(org.id, [d.id], [c.id], ['subscribe', 'publish'], nextTime());
        await connections.connect(org.id, [d.id, d.id], [c.id, c.id], ['publish', 'publish'], nextTime());
        assert.equal(await countRows('connections', 'device_id', d.id), 2);
        assert.deepEqual(await connections.channelDevices(org.id, c.id, 0, 10), { total: 1, items: [{ device_id: d.id, name: 'sensor', status: 'enabled', types: ['publish', 'subscribe'] }] });
        assert.deepEqual(await connections.deviceChannels(org.id, d.id, 0, 10), { total: 1, items: [{ channel_id: c.id, name: 'telemetry', types: ['publish', 'subscribe'] }] });
      });

      test('disconnecting removes only the given types', async () => {
        const org = await newOrg();
        const d = await newDevice(org.id);
        const c = await newChannel(org.id);
        await connections.connect(org.id, [d.id], [c.id], ['publish', 'subscribe'], nextTime());
        await connections.disconnect(org.id, [d.id], [c.id], ['publish']);
        assert.deepEqual((await connections.channelDevices(org.id, c.id, 0, 10)).items.map((x) => x.types), [['subscribe']]);
        await connections.disconnect(org.id, [d.id], [c.id], ['subscribe']);
        assert.deepEqual(await connections.channelDevices(org.id, c.id, 0, 10), { total: 0, items: [] });
      });

      test('connected devices and channels page by id, counting each once', async () => {
        const org = await newOrg();
        const ds = [];
        for (let i = 0; i < 5; i++) ds.push(await newDevice(org.id, { name: `d${i}` }));
        const cs = [await newChannel(org.id, { name: 'c0' }), await newChannel(org.id, { name: 'c1' })];
        await connections.connect(org.id, ds.map((d) => d.id), cs.map((c) => c.id), ['publish', 'subscribe'], nextTime());
        const page = await connections.channelDevices(org.id, cs[0]!.id, 2, 2);
        assert.equal(page.total, 5);
        assert.deepEqual(page.items.map((x) => x.device_id), [ds[2]!.id, ds[3]!.id]);
        const channelsOfDevice = await connections.deviceChannels(org.id, ds[0]!.id, 1, 5);
        assert.equal(channelsOfDevice.total, 2);
        assert.deepEqual(channelsOfDevice.items.map((x) => x.channel_id), [cs[1]!.id]);
      });

      test('connections are scoped to their organization', async () => {
        const org = await newOrg();
        const other = await newOrg();
        const d = await newDevice(org.id);
        const c = await newChannel(org.id);
        await connections.connect(org.id, [d.id], [c.id], ['publish'], nextTime());
        assert.deepEqual(await connections.channelDevices(other.id, c.id, 0, 10), { total: 0, items: [] });
        assert.deepEqual(await connections.deviceChannels(other.id, d.id, 0, 10), { total: 0, items: [] });
        await connections.disconnect(other.id, [d.id], [c.id], ['publish']);
        assert.equal((await connections.channelDevices(org.id, c.id, 0, 10)).total, 1);
      });

      test('deleting a device or a channel removes its connections', async () => {
        const org = await newOrg();
        const d = await newDevice(org.id);
        const c1 = await newChannel(org.id);
        const c2 = await newChannel(org.id);
        await connections.connect(org.id, [d.id], [c1.id, c2.id], ['publish'], nextTime());
        assert.equal(await channels.delete(org.id, c1.id), true);
        assert.deepEqual((await connections.deviceChannels(org.id, d.id, 0, 10)).items.map((x) => x.channel_id), [c2.id]);
        assert.equal(await devices.delete(org.id, d.id), true);
        assert.equal(await countRows('connections', 'channel_id', c2.id), 0);
      });
    });

    describe('tokens', () => {
      test('a refresh token is found by hash and revoked exactly once', async () => {
        const u = await newUser();
        const row = { id: uuidv7(), user_id: u.id, family_id: uuidv7(), token_hash: randomToken(), expires_at: nextTime(), revoked_at: null, created_at: nextTime() };
        await tokens.insertRefresh(row);
        assert.deepEqual(await tokens.findRefresh(row.token_hash), row);
        const now = nextTime();
        assert.equal(await tokens.revokeRefresh(row.id, now), true);
        assert.equal(await tokens.revokeRefresh(row.id, nextTime()), false);
        assert.equal((await tokens.findRefresh(row.token_hash))?.revoked_at, now);
        assert.equal(await tokens.findRefresh('unknown'), undefined);
      });

      test('a family, or all of a user, is revoked together; expired tokens are pruned', async () => {
        const u = await newUser();
        const family = uuidv7();
        const expires = nextTime();
        const mk = (familyId: string) => ({ id: uuidv7(), user_id: u.id, family_id: familyId, token_hash: randomToken(), expires_at: expires, revoked_at: null, created_at: nextTime() });
        const [a, b, c] = [mk(family), mk(family), mk(uuidv7())];
        for (const r of [a, b, c]) await tokens.insertRefresh(r);
        await tokens.revokeFamily(family, nextTime());
        assert.ok((await tokens.findRefresh(a.token_hash))?.revoked_at);
        assert.ok((await tokens.findRefresh(b.token_hash))?.revoked_at);
        assert.equal((await tokens.findRefresh(c.token_hash))?.revoked_at, null);
        await tokens.revokeAllRefreshOfUser(u.id, nextTime());
        assert.ok((await tokens.findRefresh(c.token_hash))?.revoked_at);
        const pruned = await tokens.pruneRefresh(nextTime());
        assert.ok(pruned >= 3);
        assert.equal(await tokens.findRefresh(a.token_hash), undefined);
      });

      test('a personal access token keeps its actions as a list', async () => {
        const org = await newOrg();
        const u = org.owner;
        const pat = { id: uuidv7(), user_id: u.id, name: 'deploy', token_hash: randomToken(), org_id: org.id, actions: ['devices:read', 'devices:write'] as Action[], expires_at: nextTime(), revoked_at: null, last_used_at: null, created_at: nextTime() };
        await tokens.insertPat(pat);
        const { token_hash: _, ...shown } = pat;
        assert.deepEqual(await tokens.findPatByHash(pat.token_hash), shown);
        const used = nextTime();
        await tokens.touchPat(pat.id, used);
        assert.equal((await tokens.findPatByHash(pat.token_hash))?.last_used_at, used);
      });

      test('personal access tokens list newest first; revoking is the owner\'s, and repeatable', async () => {
        const org = await newOrg();
        const u = org.owner;
        const ids = [];
        for (let i = 0; i < 3; i++) {
          const id = uuidv7(epoch + (seconds + 1) * 1000);
          ids.push(id);
          await tokens.insertPat({ id, user_id: u.id, name: `t${i}`, token_hash: randomToken(), org_id: org.id, actions: [], expires_at: nextTime(), revoked_at: null, last_used_at: null, created_at: nextTime() });
        }
        const list = await tokens.listPats(u.id, 0, 2);
        assert.equal(list.total, 3);
        assert.deepEqual(list.items.map((p) => p.id), [ids[2], ids[1]]);
        assert.deepEqual(list.items[0]?.actions, []);
        const stranger = await newUser();
        assert.equal(await tokens.revokePat(stranger.id, ids[0]!, nextTime()), false);
        assert.equal(await tokens.revokePat(u.id, ids[0]!, nextTime()), true);
        assert.equal(await tokens.revokePat(u.id, ids[0]!, nextTime()), true);
        assert.equal(await tokens.revokePat(u.id, uuidv7(), nextTime()), false);
      });
    });

    describe('access store', () => {
      test('a device is found by secret hash and by id, with its organization and status', async () => {
        const org = await newOrg();
        const on = await newDevice(org.id);
        const off = await newDevice(org.id, { status: 'disabled' });
        assert.deepEqual(await access.deviceBySecretHash(on.secret_hash), { id: on.id, orgId: org.id, enabled: true });
        assert.deepEqual(await access.deviceById(off.id), { id: off.id, orgId: org.id, enabled: false });
        assert.equal(await access.deviceBySecretHash('no-such-hash'), undefined);
        assert.equal(await access.deviceById(uuidv7()), undefined);
      });

      test("channel access is a bit set of the connection types, with the channel's content type", async () => {
        const org = await newOrg();
        const d = await newDevice(org.id);
        const stranger = await newDevice(org.id);
        const pub = await newChannel(org.id);
        const both = await newChannel(org.id, { content_type: 'application/octet-stream' });
        const none = await newChannel(org.id, { content_type: 'application/json' });
        await connections.connect(org.id, [d.id], [pub.id], ['publish'], nextTime());
        await connections.connect(org.id, [d.id], [both.id], ['publish', 'subscribe'], nextTime());
        assert.deepEqual(await access.channelAccess(d.id, pub.id), { orgId: org.id, mask: 1, contentType: 'application/senml+json' });
        assert.deepEqual(await access.channelAccess(d.id, both.id), { orgId: org.id, mask: 3, contentType: 'application/octet-stream' });
        assert.deepEqual(await access.channelAccess(d.id, none.id), { orgId: org.id, mask: 0, contentType: 'application/json' });
        assert.deepEqual(await access.channelAccess(stranger.id, both.id), { orgId: org.id, mask: 0, contentType: 'application/octet-stream' });
        assert.deepEqual(await access.channelAccess(d.id, uuidv7()), { orgId: undefined, mask: 0, contentType: undefined });
      });
    });
  });
}
