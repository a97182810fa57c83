// Which certificate renewed which: the API gives a renewal's `replaces`, not the other way round,
// so the renewal of a superseded certificate is looked for among its device's certificates (on the
// page already, or asked once per device: a device holds at most two active ones, a few in all).
import { api } from '../api/client';
import type { Certificate } from '../api/types';
import { useLoad } from '../ui';

/** For each superseded certificate of `certificates`, the serial of the certificate that renewed it (when one did). */
export function useRenewedBy(orgId: string, certificates: Certificate[]): Map<string, string> {
  const known = new Map(certificates.flatMap((c) => (c.replaces ? [[c.replaces, c.serial] as const] : [])));
  const devices = [...new Set(certificates.filter((c) => c.revocation_reason === 'superseded' && !known.has(c.serial)).map((c) => c.device_id))].sort();
  const key = devices.join(',');
  const more = useLoad(async () => {
    const pages = await Promise.all(devices.map((device_id) => api.GET('/orgs/{org}/certificates', { params: { path: { org: orgId }, query: { device_id, limit: 100 } } })));
    return { data: pages.flatMap((p) => p.data?.certificates ?? []) };
  }, [orgId, key]);
  for (const c of more.data ?? []) if (c.replaces && !known.has(c.replaces)) known.set(c.replaces, c.serial);
  return known;
}
