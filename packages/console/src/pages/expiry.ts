// How soon a device certificate expires, in whole days, and whether that deserves a mark: the
// certificates inventory marks those within 30 days, and more strongly those within 7.

export const dayMs = 86_400_000;
export const soonDays = 30; // marked, and what the "expiring" filter selects
export const urgentDays = 7; // marked more strongly

/** When a certificate expires, said in days from `now`, and how urgent that is. */
export function expiry(notAfter: string, now: number): { text: string; level: 'ok' | 'soon' | 'urgent' | 'expired' } {
  const left = Date.parse(notAfter) - now;
  if (left <= 0) return { text: 'expired', level: 'expired' };
  const days = Math.floor(left / dayMs);
  const text = days === 0 ? 'expires today' : `expires in ${days} day${days === 1 ? '' : 's'}`;
  return { text, level: days <= urgentDays ? 'urgent' : days <= soonDays ? 'soon' : 'ok' };
}

