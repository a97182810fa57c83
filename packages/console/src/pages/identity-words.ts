// The audit trail and the certificates in words (docs/identity.md): what each identity event's
// action was, who did it, and why a certificate was revoked. Pure, for the console's unit tests.
import type { IdentityEvent } from '../api/types';

export type IdentityAction = IdentityEvent['action'];

/** Each action of GET /orgs/{org}/identity-events, as a heading of its row. */
export const actionWords: Record<IdentityAction, string> = {
  register: 'Registered',
  token: 'Enrolment token made',
  manufacturer_ca: 'Manufacturer CA changed',
  enrol: 'Enrolment',
  renew: 'Certificate renewal',
  supersede: 'Renewed certificate in use, the one it replaces revoked',
  suspend: 'Suspended',
  resume: 'Resumed',
  reset: 'Reset to pending',
  revoke: 'Registration revoked',
  delete: 'Registration deleted',
  revoke_certificate: 'Certificate revoked',
};

/** The actions in the order of a device's life, for the events filter. */
export const actions = Object.keys(actionWords) as IdentityAction[];

/** Who acted: `user:<id>`, `token:<id>` (or `token` over MQTT), `device`, `key` (docs/identity.md). */
export function actorWords(actor: string): string {
  if (actor.startsWith('user:')) return 'a member';
  if (actor === 'token' || actor.startsWith('token:')) return 'a device, with an enrolment token';
  if (actor === 'device') return 'the device, with its certificate';
  if (actor === 'key') return 'a device, with its registered key';
  if (actor === 'manufacturer' || actor.startsWith('manufacturer:')) return "a device, with its maker's factory certificate";
  return actor;
}

/** An event in one line: what happened, whether it was refused and with which code. */
export function eventWords(e: Pick<IdentityEvent, 'action' | 'outcome' | 'code'>): string {
  const what = actionWords[e.action];
  return e.outcome === 'refused' ? `${what} refused${e.code ? ` (${e.code})` : ''}` : what;
}

const reasonWords: Record<string, string> = {
  unspecified: 'no reason given',
  keyCompromise: 'key compromise',
  cessationOfOperation: 'cessation of operation',
  certificateHold: 'on hold',
};

/**
 * Why a certificate was revoked. `superseded` is what a renewal leaves behind once the new
 * certificate is used, but a reset of the registration revokes with it too (and an operator may
 * choose it): only with the renewal known is it "replaced by a renewal".
 */
export function revocationWords(reason: string | null, renewedBy: string | undefined): string {
  if (reason === 'superseded') return renewedBy ? 'replaced by a renewal' : 'superseded';
  return reasonWords[reason ?? 'unspecified'] ?? reason ?? 'no reason given';
}
