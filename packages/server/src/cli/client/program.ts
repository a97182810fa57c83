// The client commands of `fleetwire`: what each takes, for parsing and --help. Nothing here talks
// to a platform or reads a file: each action loads its module when it runs (./actions/).
import { Argument, InvalidArgumentError, Option, type Command } from 'commander';
import type { operations } from '../api-types.js';
import { pagingOptions } from './paging.js';
import { instant, lifetime, parseSeconds } from './time.js';

type Action = (env: NodeJS.ProcessEnv, args: unknown[], options: Record<string, unknown>) => Promise<void>;

/** Runs `name` from an action module, with the parsed arguments and every option (the parents' too). */
function act<M extends Record<string, unknown>>(load: () => Promise<M>, name: keyof M & string) {
  return async (...received: unknown[]): Promise<void> => {
    const command = received.at(-1) as Command;
    const action = (await load())[name] as Action;
    await action(process.env, command.processedArgs as unknown[], command.optsWithGlobals());
  };
}

const auth = () => import('./actions/auth.js');
const orgs = () => import('./actions/orgs.js');
const fleet = () => import('./actions/fleet.js');
const messages = () => import('./actions/messages.js');
const tokens = () => import('./actions/tokens.js');
const identity = () => import('./actions/identity.js');
const twins = () => import('./actions/twins.js');
const events = () => import('./actions/events.js');

const roles = ['owner', 'admin', 'operator', 'viewer'];
type RevocationReason = NonNullable<NonNullable<operations['revokeCertificate']['requestBody']>['content']['application/json']['reason']>;
// RFC 5280 §5.3.1, as the platform names them: the API types reject a name it does not take
const revocationReasons = ['unspecified', 'keyCompromise', 'superseded', 'cessationOfOperation', 'certificateHold'] as const satisfies readonly RevocationReason[];

function withOrg(c: Command): Command {
  return c.option('--org <id|name>', 'the organization (default: the one chosen with fleetwire orgs use)');
}

function json(c: Command): Command {
  return c.option('--json', 'print the JSON the platform answered');
}

function jsonObject(raw: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(raw);
  } catch {
    throw new InvalidArgumentError('not JSON: e.g. \'{"floor":2}\'');
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new InvalidArgumentError('a JSON object, e.g. \'{"floor":2}\'');
  return v as Record<string, unknown>;
}

const collect = (value: string, previous: string[] = []): string[] => [...previous, ...value.split(',').filter(Boolean)];

/** `fleetwire orgs|members|devices|…`: list, create, show, change, delete, plus each resource's own verbs. */
export function addClientCommands(cli: Command): void {
  cli
    .command('login')
    .description('sign in to a running platform and store the tokens in the user\'s config folder (mode 0600)')
    .option('--url <url>', 'the platform\'s URL (default: FLEETWIRE_URL, else the last login\'s)')
    .option('--email <email>', 'the account\'s email (asked on a terminal when left out)')
    .option('--password-stdin', 'read the password from standard input instead of asking for it')
    .action(act(auth, 'login'));
  cli.command('logout').description('end the stored session on the platform and forget its tokens').action(act(auth, 'logout'));
  json(cli.command('whoami').description('show the signed-in user and the chosen organization')).action(act(auth, 'whoami'));

  const o = cli.command('orgs').description('organizations: list, create, show, rename, delete, and choose the one to work in');
  pagingOptions(o.command('list').description('the organizations you belong to').option('--name <part>', 'whose name contains this')).action(act(orgs, 'listOrgs'));
  json(o.command('create').description('create an organization (you become its owner)').argument('<name>')).action(act(orgs, 'createOrg'));
  json(o.command('show').description('show an organization').argument('<id|name>')).action(act(orgs, 'showOrg'));
  json(o.command('rename').description('rename an organization').argument('<id|name>').argument('<new-name>')).action(act(orgs, 'renameOrg'));
  json(o.command('delete').description('delete an organization and everything in it').argument('<id|name>')).action(act(orgs, 'deleteOrg'));
  o.command('use').description('choose the organization later commands work in (remembered with the login)').argument('<id|name>').action(act(orgs, 'useOrg'));

  const m = cli.command('members').description('the members of an organization and their roles');
  pagingOptions(withOrg(m.command('list').description('list the members'))).action(act(orgs, 'listMembers'));
  json(withOrg(m.command('add').description('add a user by email (an invitation when they have no account yet)').argument('<email>').addOption(new Option('--role <role>', 'their role').choices(roles).makeOptionMandatory()))).action(act(orgs, 'addMember'));
  json(withOrg(m.command('set-role').description('change a member\'s role').argument('<user-id>').addArgument(new Argument('<role>').choices(roles)))).action(act(orgs, 'setMemberRole'));
  json(withOrg(m.command('remove').description('remove a member').argument('<user-id>'))).action(act(orgs, 'removeMember'));

  const d = cli.command('devices').description('devices: list, create, import CSV, enable, disable, rotate a secret, delete');
  pagingOptions(withOrg(d.command('list').description('list devices')))
    .option('--name <part>', 'whose name contains this')
    .option('--tag <tag>', 'with this tag')
    .option('--metadata <json>', 'whose metadata has these top-level values, e.g. \'{"floor":2}\'')
    .addOption(new Option('--status <status>', 'enabled or disabled').choices(['enabled', 'disabled']))
    .option('--group <id>', 'in this group')
    .addOption(new Option('--sort <field>').choices(['name', 'created_at', 'updated_at']))
    .addOption(new Option('--dir <dir>').choices(['asc', 'desc']))
    .action(act(fleet, 'listDevices'));
  json(withOrg(d.command('create').description('create a device and print its secret (shown only this once)').argument('<name>')))
    .option('--tag <tags>', 'a tag (repeat, or separate with commas)', collect)
    .option('--metadata <json>', 'a JSON object', jsonObject)
    .option('--disabled', 'create it disabled')
    .action(act(fleet, 'createDevice'));
  json(withOrg(d.command('import').description('create the devices of a CSV file (columns: name, tags separated by ;, metadata as JSON, status), all or none; - reads standard input').argument('<file>'))).action(act(fleet, 'importDevices'));
  json(withOrg(d.command('show').description('show a device').argument('<id>'))).action(act(fleet, 'showDevice'));
  json(withOrg(d.command('enable').description('let a device connect and publish again').argument('<id>'))).action(act(fleet, 'enableDevice'));
  json(withOrg(d.command('disable').description('cut a device off: its sessions end and its secret is refused').argument('<id>'))).action(act(fleet, 'disableDevice'));
  json(withOrg(d.command('rotate-secret').description('give a device a new secret (printed once); the old one stops working').argument('<id>'))).action(act(fleet, 'rotateSecret'));
  json(withOrg(d.command('delete').description('delete a device').argument('<id>'))).action(act(fleet, 'deleteDevice'));

  const c = cli.command('channels').description('channels: list, create, show, delete');
  pagingOptions(withOrg(c.command('list').description('list channels'))).option('--name <part>', 'whose name contains this').option('--tag <tag>', 'with this tag').action(act(fleet, 'listChannels'));
  json(withOrg(c.command('create').description('create a channel').argument('<name>')))
    .option('--tag <tags>', 'a tag (repeat, or separate with commas)', collect)
    .option('--metadata <json>', 'a JSON object', jsonObject)
    .addOption(new Option('--content-type <type>', 'how payloads without a content type are taken').choices(['application/senml+json', 'application/json', 'application/octet-stream']))
    .action(act(fleet, 'createChannel'));
  json(withOrg(c.command('show').description('show a channel').argument('<id>'))).action(act(fleet, 'showChannel'));
  json(withOrg(c.command('delete').description('delete a channel').argument('<id>'))).action(act(fleet, 'deleteChannel'));

  const g = cli.command('groups').description('groups of devices: list, create, show, delete, add and remove devices');
  pagingOptions(withOrg(g.command('list').description('list groups'))).option('--name <part>', 'whose name contains this').action(act(fleet, 'listGroups'));
  json(withOrg(g.command('create').description('create a group').argument('<name>'))).option('--tag <tags>', 'a tag (repeat, or separate with commas)', collect).action(act(fleet, 'createGroup'));
  json(withOrg(g.command('show').description('show a group').argument('<id>'))).action(act(fleet, 'showGroup'));
  json(withOrg(g.command('delete').description('delete a group (its devices stay)').argument('<id>'))).action(act(fleet, 'deleteGroup'));
  pagingOptions(withOrg(g.command('devices').description('list the devices of a group').argument('<id>'))).action(act(fleet, 'listGroupDevices'));
  json(withOrg(g.command('add').description('add devices to a group').argument('<group-id>').argument('<device-ids...>'))).action(act(fleet, 'addToGroup'));
  json(withOrg(g.command('remove').description('take devices out of a group').argument('<group-id>').argument('<device-ids...>'))).action(act(fleet, 'removeFromGroup'));

  for (const [name, what] of [['connect', 'let devices publish and/or subscribe on channels'], ['disconnect', 'take those rights away (their live sessions there end)']] as const) {
    json(withOrg(cli.command(name).description(what)))
      .requiredOption('--device <ids>', 'a device id (repeat, or separate with commas)', collect)
      .requiredOption('--channel <ids>', 'a channel id (repeat, or separate with commas)', collect)
      .option('--type <types>', 'publish, subscribe or both (default: both)', collect)
      .action(act(fleet, name));
  }

  cli
    .command('publish')
    .description('publish a message on a channel with your token: from the argument, --file, or standard input')
    .argument('<channel-id>')
    .argument('[payload]', 'the message; leave out to read --file or standard input')
    .option('--subtopic <subtopic>', 'e.g. lab/bench')
    .option('--file <file>', 'read the message from this file')
    .addOption(new Option('--format <format>', 'senml (SenML JSON), json, or bytes (sent as they are)').choices(['senml', 'json', 'bytes']).default('senml'))
    .action(act(messages, 'publish'));
  cli
    .command('subscribe')
    .description('print the channel\'s messages as they arrive, over WebSocket, until Ctrl-C')
    .argument('<channel-id>')
    .option('--subtopic <filter>', 'only these subtopics (+ and # wildcards allowed)')
    .option('--json', 'one JSON envelope per line (id, publisher, subtopic, content type, time, base64 payload)')
    .action(act(messages, 'subscribe'));

  const tw = cli.command('twin').description("device twins: read, change desired state and tags, history, find devices by twin fields");
  const twinName = (c: Command) => c.option('--name <twin>', 'a named twin (default: the default twin)');
  json(twinName(withOrg(tw.command('get').description('show a device\'s twin: desired, reported, the delta between them, tags').argument('<device-id>')))).action(act(twins, 'getTwin'));
  json(twinName(withOrg(tw.command('set').description('change desired state (a JSON merge patch: null removes a member) and tags').argument('<device-id>').argument('[desired]', 'JSON object merged into desired, e.g. \'{"mode":"eco"}\'', jsonObject))))
    .option('--tags <json>', 'JSON object merged into the tags', jsonObject)
    .option('--if-version <n>', 'refuse (412) when the twin moved past this version', (v) => {
      if (!/^\d+$/.test(v)) throw new InvalidArgumentError('a version number');
      return Number(v);
    })
    .action(act(twins, 'setTwin'));
  json(twinName(withOrg(tw.command('history').description('the changes of a twin: version, when, who, the patch').argument('<device-id>'))))
    .option('--from-version <n>', 'from this version on', (v) => Number(v))
    .option('--limit <n>', 'at most this many changes (default 100)', (v) => Number(v))
    .action(act(twins, 'twinHistory'));
  pagingOptions(twinName(withOrg(tw.command('query').description('find twins whose fields match every condition, e.g. "reported.firmware.version = 1.4.2" "desired.mode != reported.mode"').argument('<condition...>')))).action(act(twins, 'queryTwins'));

  const msg = cli.command('messages').description('the stored messages of a channel: query, aggregate, export CSV');
  const filters = (x: Command) =>
    x
      .argument('<channel-id>')
      .addOption(new Option('--type <type>', 'which messages').choices(['senml', 'json', 'binary']))
      .option('--subtopic <subtopic>')
      .option('--publisher <id>')
      .option('--name <name>', 'SenML record name')
      .option('--from <time>', 'from this time (ISO 8601 or seconds)')
      .option('--to <time>', 'until this time');
  pagingOptions(filters(msg.command('query').description('list stored messages, newest first'))).addOption(new Option('--dir <dir>').choices(['asc', 'desc'])).action(act(messages, 'query'));
  json(filters(msg.command('aggregate').description('aggregate SenML values per name and interval')))
    .addOption(new Option('--aggregation <fn>').choices(['min', 'max', 'avg', 'sum', 'count']).makeOptionMandatory())
    .requiredOption('--interval <interval>', 'e.g. 30s, 5m, 1h, 1d')
    .action(act(messages, 'aggregate'));
  filters(msg.command('export').description('write every matching SenML record as CSV')).option('-o, --output <file>', 'write to this file instead of standard output').action(act(messages, 'exportCsv'));

  const t = cli.command('tokens').description('personal access tokens: limited to one organization and chosen actions');
  pagingOptions(t.command('list').description('list your tokens')).action(act(tokens, 'listTokens'));
  json(withOrg(t.command('create').description('create a token and print it (shown only this once)').argument('<name>')))
    .requiredOption('--actions <actions>', 'what it may do, e.g. devices:read,messages:publish (docs/permissions.md)', collect)
    .option('--expires-in <seconds>', 'its lifetime (default: 30 days)', (raw) => {
      if (!/^\d+$/.test(raw)) throw new InvalidArgumentError('a number of seconds');
      return Number(raw);
    })
    .action(act(tokens, 'createToken'));
  json(t.command('revoke').description('revoke a token: it stops working at once').argument('<id>')).action(act(tokens, 'revokeToken'));

  addIdentityCommands(cli);
  addEventCommands(cli);
}

/** A time in the past: ISO 8601, or how long ago (`15m`, `2h`, `7d`). */
function since(raw: string): string {
  const ago = parseSeconds(raw);
  if (ago !== undefined && /[smhd]$/.test(raw.trim())) return new Date(Date.now() - ago * 1000).toISOString();
  const t = /^\d{4}-\d{2}-\d{2}/.test(raw.trim()) ? Date.parse(raw.trim()) : Number.NaN;
  if (Number.isNaN(t)) throw new InvalidArgumentError('the time is ISO 8601 (2027-01-31, 2027-01-31T12:00:00Z) or how long ago (15m, 2h, 7d)');
  return new Date(t).toISOString();
}

/** `fleetwire events list|tail`: the organization's fleet events and audit log (docs/events.md). */
function addEventCommands(cli: Command): void {
  const e = cli.command('events').description('the organization\'s fleet events and audit log: list what is stored, tail what happens');
  const filters = (x: Command) =>
    withOrg(x)
      .option('--type <types>', 'only these types; a prefix ends in .* (device.*); repeat, or separate with commas', collect)
      .option('--device <id>', 'only events about this device');
  pagingOptions(filters(e.command('list').description('list stored events, newest first')))
    .option('--actor <user-id>', 'only what this user did')
    .option('--from <time>', 'from this time: ISO 8601, or how long ago (15m, 2h, 7d)', since)
    .option('--to <time>', 'before this time', since)
    .option('--oldest-first', 'oldest first')
    .action(act(events, 'listEvents'));
  filters(e.command('tail').description('print events as they happen, over WebSocket, until Ctrl-C'))
    .option('--json', 'one JSON event per line')
    .action(act(events, 'tailEvents'));
}

/** `fleetwire registrations|enrolment-tokens|manufacturer-cas|certificates|identity`: device identity (docs/identity.md). */
function addIdentityCommands(cli: Command): void {
  const r = cli.command('registrations').description('devices registered ahead of enrolment: list, create, import CSV, show, suspend, resume, reset, revoke, delete');
  pagingOptions(withOrg(r.command('list').description('list registrations, newest first')))
    .addOption(new Option('--state <state>', 'in this state').choices(['pending', 'enrolled', 'suspended', 'revoked']))
    .option('--serial <serial>', 'with this serial')
    .action(act(identity, 'listRegistrations'));
  json(withOrg(r.command('create').description('register a device by its serial; it enrols later with its key pair').argument('<serial>')))
    .option('--model <model>', 'its model (the device is named "<model> <serial>")')
    .option('--public-key <file|fingerprint>', 'its public key: a PEM file, or the hex SHA-256 of the key\'s DER; with it the device enrols without a token')
    .option('--channel <ids>', 'a channel it is connected to when it enrols (repeat, or separate with commas)', collect)
    .option('--group <ids>', 'a group it joins when it enrols (repeat, or separate with commas)', collect)
    .action(act(identity, 'createRegistration'));
  json(withOrg(r.command('import').description('register the devices of a CSV file (columns: serial, model, public_key, channel_ids and group_ids separated by ;), all or none per 1000 rows; - reads standard input').argument('<file>'))).action(act(identity, 'importRegistrations'));
  json(withOrg(r.command('show').description('show a registration').argument('<id>'))).action(act(identity, 'showRegistration'));
  for (const [name, what, action] of [
    ['suspend', 'refuse the device on every protocol and end its sessions; its certificates are kept', 'suspendRegistration'],
    ['resume', 'let a suspended device connect again with its certificates', 'resumeRegistration'],
    ['reset', 'back to pending: its certificates are revoked and it enrols again (a factory reset)', 'resetRegistration'],
    ['revoke', 'for good: its certificates are revoked and it cannot enrol again', 'revokeRegistration'],
  ] as const) {
    json(withOrg(r.command(name).description(what).argument('<id>'))).action(act(identity, action));
  }
  json(withOrg(r.command('delete').description('delete a pending or revoked registration (its device stays)').argument('<id>'))).action(act(identity, 'deleteRegistration'));

  // not under `tokens`: those are personal access tokens, for people and scripts; these enrol one device
  const e = cli.command('enrolment-tokens').description('one-time tokens a device enrols with: create, list, delete');
  json(withOrg(e.command('create').description('make a token that enrols one device, once, and print it (shown only this once)')))
    .option('--expires-in <lifetime>', 'e.g. 15m, 12h, 7d (default: the platform\'s, 15 minutes)', lifetime('--expires-in', 60, 30 * 86_400, '1m to 30d'))
    .option('--serial-pattern <pattern>', 'only a serial it matches, * matching any run of characters, e.g. \'SN-*\'')
    .action(act(identity, 'createEnrolmentToken'));
  pagingOptions(withOrg(e.command('list').description('list enrolment tokens, newest first (never the tokens themselves)'))).action(act(identity, 'listEnrolmentTokens'));
  json(withOrg(e.command('delete').description('withdraw a token: it can no longer enrol anything').argument('<id>'))).action(act(identity, 'deleteEnrolmentToken'));

  const m = cli.command('manufacturer-cas').description("device makers' CAs: a device whose factory certificate one signed enrols with it, when its serial is allowed");
  json(withOrg(m.command('create').description("register a maker's CA from its PEM file (- reads standard input)").argument('<name>').argument('<file>')))
    .requiredOption('--serial <patterns>', 'a serial it may enrol, * matching any run of characters (repeat, or separate with commas)', collect)
    .option('--channel <ids>', 'a channel a device it enrols is connected to (repeat, or separate with commas)', collect)
    .option('--group <ids>', 'a group a device it enrols joins (repeat, or separate with commas)', collect)
    .action(act(identity, 'createManufacturerCa'));
  pagingOptions(withOrg(m.command('list').description('list manufacturer CAs, newest first'))).action(act(identity, 'listManufacturerCas'));
  json(withOrg(m.command('show').description('show a manufacturer CA').argument('<id>'))).action(act(identity, 'showManufacturerCa'));
  json(withOrg(m.command('update').description('change its name, allow-list (replaced as a whole), channels or groups').argument('<id>')))
    .option('--name <name>', 'its new name')
    .option('--serial <patterns>', 'the new allow-list (repeat, or separate with commas)', collect)
    .option('--channel <ids>', 'the channels a device it enrols is connected to', collect)
    .option('--group <ids>', 'the groups a device it enrols joins', collect)
    .action(act(identity, 'updateManufacturerCa'));
  json(withOrg(m.command('delete').description('remove it: its factory certificates enrol nothing from now on').argument('<id>'))).action(act(identity, 'deleteManufacturerCa'));

  const c = cli.command('certificates').description('the certificates devices enrolled for: list, show, revoke');
  pagingOptions(withOrg(c.command('list').description('list device certificates, newest first')))
    .option('--device <id>', 'of this device')
    .addOption(new Option('--status <status>', 'active or revoked').choices(['active', 'revoked']))
    .option('--expiring-before <time>', 'whose validity ends before this time: ISO 8601, or from now, e.g. 30d', instant)
    .action(act(identity, 'listCertificates'));
  json(withOrg(c.command('show').description('show a certificate by its serial (hex)').argument('<serial>')))
    .addOption(new Option('--pem', 'print only the certificate, PEM').conflicts('json'))
    .action(act(identity, 'showCertificate'));
  json(withOrg(c.command('revoke').description('revoke a certificate: the device\'s sessions with it end and it cannot connect with it again').argument('<serial>')))
    .addOption(new Option('--reason <reason>', 'why (RFC 5280), in the CRL').choices(revocationReasons).default('unspecified'))
    .action(act(identity, 'revokeCertificate'));

  const i = cli.command('identity').description('device identity: the audit trail and the organization\'s CA');
  pagingOptions(withOrg(i.command('events').description('the audit trail: registrations, tokens, enrolments and operator actions, newest first')))
    .option('--refused', 'only refusals (with the code of the step that failed)')
    .option('--registration <id>', 'only about this registration')
    .action(act(identity, 'listIdentityEvents'));
  json(withOrg(i.command('ca').description('print the organization\'s issuing CA and the platform root, PEM'))).action(act(identity, 'showCa'));
}
