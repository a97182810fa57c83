/** Time source, injected so that expiry logic can be tested without sleeping. */
export interface Clock {
  now(): number; // Unix milliseconds
}

export const systemClock: Clock = { now: () => Date.now() };

/** A clock that only moves when told to. */
export class ManualClock implements Clock {
  constructor(private t: number = Date.UTC(2026, 0, 1)) {}
  now(): number {
    return this.t;
  }
  advance(ms: number): void {
    this.t += ms;
  }
}

export function iso(ms: number): string {
  return new Date(ms).toISOString();
}
