import type { TestPlatform } from './platform.js';

export interface Fleet {
  ownerToken: string;
  org: string;
  channel: string;
  /** Connected for publish and subscribe. */
  device: { id: string; secret: string };
}

/** An organization with one channel and one device connected to it for publish and subscribe. */
export async function smallFleet(t: TestPlatform, email = 'fleet-owner@example.com'): Promise<Fleet> {
  const owner = await t.user(email);
  const org = (await t.request('POST', '/orgs', { token: owner.token, body: { name: 'fleet' } })).json().id as string;
  const device = (await t.request('POST', `/orgs/${org}/devices`, { token: owner.token, body: { name: 'd' } })).json() as { id: string; secret: string };
  const channel = (await t.request('POST', `/orgs/${org}/channels`, { token: owner.token, body: { name: 'c' } })).json().id as string;
  await t.request('POST', `/orgs/${org}/connections`, { token: owner.token, body: { device_ids: [device.id], channel_ids: [channel], types: ['publish', 'subscribe'] } });
  return { ownerToken: owner.token, org, channel, device: { id: device.id, secret: device.secret } };
}
