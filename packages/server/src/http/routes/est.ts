// EST, Enrollment over Secure Transport (RFC 7030, with RFC 8951's clarifications): the same
// enrolment as POST /enrol, in the bodies EST clients, openssl and curl already speak. The optional
// label of RFC 7030 §3.2.2 is the organization id. Enrolment itself is IdentityService.enrol; this
// file only translates HTTP Basic, base64 DER and certs-only PKCS#7 to and from it.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { AppError } from '../../core/errors.js';
import { isUuid } from '../../core/ids.js';
import type { Platform } from '../../platform.js';
import type { Caller } from '../../identity/index.js';
import { certsOnly, pemToDer } from '../../identity/pki.js';
import { OrgParams, problems } from '../schemas.js';
import { certificateOf, factoryCertificateOf } from '../credentials.js';

export const estPrefix = '/.well-known/est'; // RFC 7030 §3.2.2

const certsOnlyType = 'application/pkcs7-mime; smime-type=certs-only'; // RFC 7030 §4.1.3, §4.2.3
const csrAttrsType = 'application/csrattrs'; // RFC 7030 §4.5.2
const requestType = 'application/pkcs10'; // RFC 7030 §4.2.1

/** Largest request body, bytes: a base64 P-256 CSR is well under 1 KiB; verifyCsr refuses one over 4 KiB of DER. */
export const estBodyLimit = 16 * 1024;

/** The realm a 401 names, so that a client knows to send HTTP Basic with the enrolment token (RFC 7030 §3.2.3). */
const basicChallenge = 'Basic realm="fleetwire est"';

/**
 * The CsrAttrs answer (RFC 7030 §4.5.2): sign with ecdsa-with-SHA256, an ecPublicKey on P-256,
 * the only key the platform certifies (verifyCsr refuses any other). Fixed, so written out once:
 * SEQUENCE { OID 1.2.840.10045.4.3.2, SEQUENCE { OID 1.2.840.10045.2.1, SET { OID 1.2.840.10045.3.1.7 } } }
 */
const csrAttrs = Buffer.from('3021' + '06082a8648ce3d040302' + '3015' + '06072a8648ce3d0201' + '310a' + '06082a8648ce3d030107', 'hex');

/**
 * Base64 in lines of 64 characters. RFC 8951 §3.1 has readers ignore white space; the line breaks
 * are for `openssl base64 -d`, which does not read lines longer than that.
 */
function base64Lines(der: Uint8Array): string {
  const text = Buffer.from(der).toString('base64');
  const lines: string[] = [];
  for (let i = 0; i < text.length; i += 64) lines.push(text.slice(i, i + 64));
  return lines.join('\n') + '\n';
}

/**
 * The enrolment token of an HTTP Basic Authorization: its password (the username is not read:
 * the serial is the CSR's). No header, or an empty password, is no token: a registered key's
 * enrolment. Any other scheme is refused rather than ignored, so that a client sending a
 * credential of the wrong kind learns why it was not taken.
 */
function tokenOf(authorization: string | undefined): string | undefined {
  if (authorization === undefined) return undefined;
  const basic = /^Basic +([A-Za-z0-9+/]+={0,2}) *$/i.exec(authorization);
  const decoded = basic ? Buffer.from(basic[1]!, 'base64').toString('utf8') : '';
  const colon = decoded.indexOf(':');
  if (colon < 0) throw new AppError('auth.invalid_credentials', 'EST takes HTTP Basic credentials whose password is the enrolment token (any username)');
  const password = decoded.slice(colon + 1);
  return password === '' ? undefined : password;
}

/** The request as enrol takes it: DER as it is, else the text (base64, RFC 7030 §4.2.1; or PEM) for verifyCsr to decode. */
function csrOf(body: Buffer | undefined): Buffer | string {
  if (!body) return '';
  // A DER CSR starts with a SEQUENCE tag, 0x30, which is "0" in base64 text; but base64 of a
  // SEQUENCE starts with "M": a body starting with 0x30 is taken as DER (RFC 8951 §3.2 tolerance).
  return body[0] === 0x30 ? body : body.toString('latin1');
}

export function estRoutes(fastify: FastifyInstance, platform: Platform): void {
  const { identity } = platform;
  const tags = ['identity'];

  const labelled = (path: string) => `${estPrefix}/:org/${path}`;
  /** A label must name an organization: checked on its form here; cacerts also needs the organization's issuing CA. */
  const checkLabel = (req: FastifyRequest) => {
    const label = (req.params as { org?: string }).org;
    if (label !== undefined && !isUuid(label)) throw new AppError('org.not_found', 'The EST label is an organization id');
  };

  const cacertsSchema = (withLabel: boolean) => ({
    operationId: withLabel ? 'estOrganizationCaCertificates' : 'estCaCertificates',
    tags,
    summary: withLabel ? "EST: the organization's issuing CA and the platform root" : 'EST: the platform root CA',
    description: withLabel
      ? "RFC 7030 §4.1: the organization's issuing CA, then the platform root, as a certs-only PKCS#7 in base64 (`openssl base64 -d | openssl pkcs7 -inform DER -print_certs`). 404 for an organization that has not issued a certificate yet."
      : 'RFC 7030 §4.1: the platform root, as a certs-only PKCS#7 in base64 (`openssl base64 -d | openssl pkcs7 -inform DER -print_certs`). The organization label gives its issuing CA too.',
    ...(withLabel ? { params: OrgParams } : {}),
    response: {
      200: { description: 'A certs-only PKCS#7 (CMS SignedData without signers), base64', content: { [certsOnlyType]: { schema: Type.String({ contentEncoding: 'base64' }) } } },
      ...(withLabel ? problems(404) : {}),
    },
  });
  const cacerts = async (req: FastifyRequest, reply: FastifyReply) => {
    checkLabel(req);
    const label = (req.params as { org?: string }).org;
    const pems = label === undefined ? [(await identity.root()).certificatePem] : Object.values(await identity.publishedCa(label));
    // RFC 7030 §4.1.3: base64 of the DER, whatever Content-Transfer-Encoding says (RFC 8951 §3.1)
    return reply.type(certsOnlyType).header('content-transfer-encoding', 'base64').send(base64Lines(certsOnly(pems.map((pem) => pemToDer(pem)))));
  };
  fastify.get(`${estPrefix}/cacerts`, { config: { auth: 'none' }, schema: cacertsSchema(false) }, cacerts);
  fastify.get(labelled('cacerts'), { config: { auth: 'none' }, schema: cacertsSchema(true) }, cacerts);

  const csrattrsSchema = (withLabel: boolean) => ({
    operationId: withLabel ? 'estOrganizationCsrAttributes' : 'estCsrAttributes',
    tags,
    summary: 'EST: what a certificate request must hold',
    description: 'RFC 7030 §4.5: a CsrAttrs (DER, base64) naming an ecPublicKey on P-256 signed with ecdsa-with-SHA256, the only requests the platform certifies. The subject is free: its serialNumber, else its CN, is the device serial.',
    ...(withLabel ? { params: OrgParams } : {}),
    response: {
      200: { description: 'CsrAttrs, base64', content: { [csrAttrsType]: { schema: Type.String({ contentEncoding: 'base64' }) } } },
      ...(withLabel ? problems(404) : {}),
    },
  });
  const csrattrs = async (req: FastifyRequest, reply: FastifyReply) => {
    checkLabel(req);
    return reply.type(csrAttrsType).header('content-transfer-encoding', 'base64').send(base64Lines(csrAttrs));
  };
  fastify.get(`${estPrefix}/csrattrs`, { config: { auth: 'none' }, schema: csrattrsSchema(false) }, csrattrs);
  fastify.get(labelled('csrattrs'), { config: { auth: 'none' }, schema: csrattrsSchema(true) }, csrattrs);

  // The enrolment routes read their body as bytes: their own scope, so the rest of the API keeps
  // its JSON parser and these take nothing but a PKCS#10 (415 for anything else).
  void fastify.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser(requestType, { parseAs: 'buffer', bodyLimit: estBodyLimit }, (_req, body, done) => done(null, body));
    // Every 401 here is a missing or wrong enrolment token: name the scheme that carries one
    // (RFC 9110 §11.6.1), not the Bearer of the management API.
    scope.addHook('onSend', async (_req, reply) => {
      if (reply.statusCode === 401) reply.header('www-authenticate', basicChallenge);
    });

    const enrolSchema = (again: boolean, withLabel: boolean) => ({
      operationId: `est${withLabel ? 'Organization' : ''}${again ? 'Reenroll' : 'Enroll'}`,
      tags,
      summary: again ? 'EST: renew a certificate, or enrol again with the same key (simplereenroll)' : 'EST: enrol a device from its certificate request (simpleenroll)',
      description:
        (again
          ? 'RFC 7030 §4.2.2: over HTTPS with its current certificate as TLS client certificate, a renewal (as POST /renew: the new certificate replaces the one presented once the device uses it). Without one, as simpleenroll: an enrolled device sends a new certificate request of its key, or a token. '
          : 'RFC 7030 §4.2.1: the body is a PKCS#10 of the device\'s EC P-256 key, base64 DER (`application/pkcs10`). ') +
        'Credentials: HTTP Basic whose password is a one-time enrolment token (any username), or none when the key was registered. ' +
        'The answer is the device certificate as a certs-only PKCS#7 in base64 (RFC 7030 §4.2.3); refusals carry the codes of POST /enrol, and a 401 asks for Basic.' +
        (withLabel ? ' The label is an organization id: a token or registered key of another organization is refused as unknown.' : ''),
      ...(withLabel ? { params: OrgParams } : {}),
      consumes: [requestType],
      response: {
        200: { description: 'The device certificate, a certs-only PKCS#7, base64', content: { [certsOnlyType]: { schema: Type.String({ contentEncoding: 'base64' }) } } },
        ...problems(400, 401, 403, ...(withLabel ? [404] : []), 409, 413, 415),
      },
    });
    const enrol = (again: boolean) => async (req: FastifyRequest, reply: FastifyReply) => {
      checkLabel(req);
      const label = (req.params as { org?: string }).org;
      // RFC 7030 §4.2.2: a re-enrolment over TLS with the certificate it renews is a renewal
      const presented = again ? certificateOf(req, platform.trust.current()) : undefined;
      const token = presented ? undefined : tokenOf(req.headers.authorization);
      // no token, over TLS with a certificate the platform did not issue: a factory certificate (an IDevID)
      const factory = presented || token !== undefined ? undefined : factoryCertificateOf(req, platform.trust.current());
      const caller: Caller = { actor: presented ? 'device' : token ? 'token' : factory ? 'manufacturer' : 'key', remote: req.ip, transport: 'est' };
      const csr = csrOf(req.body as Buffer | undefined);
      const enrolled = presented
        ? await identity.renew({ presented, csr, ...(label !== undefined ? { orgId: label } : {}) }, caller)
        : await identity.enrol({ csr, ...(token !== undefined ? { token } : {}), ...(factory ? { factoryCertificate: factory } : {}), ...(label !== undefined ? { orgId: label } : {}) }, caller);
      // RFC 7030 §4.2.3: the issued certificate only; the chain is what cacerts gives
      return reply.type(certsOnlyType).header('content-transfer-encoding', 'base64').send(base64Lines(certsOnly([pemToDer(enrolled.certificate)])));
    };
    for (const [path, again] of [['simpleenroll', false], ['simplereenroll', true]] as const) {
      scope.post(`${estPrefix}/${path}`, { config: { auth: 'none' }, schema: enrolSchema(again, false) }, enrol(again));
      scope.post(labelled(path), { config: { auth: 'none' }, schema: enrolSchema(again, true) }, enrol(again));
    }
  });
}
