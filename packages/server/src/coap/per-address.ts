/**
 * How many of one kind of state (observations, block-wise uploads) each source IP address holds,
 * against a limit: one address must not take all the state the endpoint keeps. An address that
 * holds none has no entry, so the map shrinks back as state is freed.
 */
export class PerAddressCount {
  private readonly counts = new Map<string, number>();

  constructor(private readonly max: number) {}

  /** Whether `address` may take one more. */
  canAdd(address: string): boolean {
    return (this.counts.get(address) ?? 0) < this.max;
  }

  add(address: string): void {
    this.counts.set(address, (this.counts.get(address) ?? 0) + 1);
  }

  remove(address: string): void {
    const n = (this.counts.get(address) ?? 1) - 1;
    if (n > 0) this.counts.set(address, n);
    else this.counts.delete(address);
  }

  clear(): void {
    this.counts.clear();
  }
}
