/**
 * The consumer seam: every durable bus consumer (the message writer today; twins, commands and
 * rules later) is declared here by its name before the bus is made, so the bus keeps messages for
 * each of them (an in-process queue, a JetStream durable consumer) from the first publish on, and
 * is attached once built. The platform starts them together after the bus and stops them together,
 * in reverse order, before the bus closes.
 */
export interface Consumer {
  /** Starts taking batches from the bus. */
  start(): Promise<void>;
  /**
   * Stops taking batches and releases what it holds; resolves once what it took is settled
   * (acknowledged or left for redelivery). Called also on a consumer that never started.
   */
  stop(): Promise<void>;
}

export class Consumers {
  private readonly declared: string[] = [];
  private readonly attached = new Map<string, Consumer>();
  private stopped = false;

  /** Declares a durable consumer by its bus name; names are unique. */
  declare(name: string): this {
    if (this.declared.includes(name)) throw new Error(`the durable consumer ${name} is declared twice`);
    this.declared.push(name);
    return this;
  }

  /** The bus's durable list, derived from the declarations. */
  get names(): readonly string[] {
    return this.declared;
  }

  attach(name: string, consumer: Consumer): void {
    if (!this.declared.includes(name)) throw new Error(`the durable consumer ${name} was not declared before the bus was made`);
    if (this.attached.has(name)) throw new Error(`the durable consumer ${name} is attached twice`);
    this.attached.set(name, consumer);
  }

  /**
   * Starts every declared consumer, in declaration order. A declared consumer without an
   * implementation is refused: the bus would keep its messages (and, in process, hold every
   * acknowledgement) for ever. When one fails to start, all are stopped again.
   */
  async start(): Promise<void> {
    const missing = this.declared.filter((n) => !this.attached.has(n));
    if (missing.length > 0) throw new Error(`durable consumers declared but not attached: ${missing.join(', ')}`);
    for (const name of this.declared) {
      try {
        await this.attached.get(name)!.start();
      } catch (e) {
        // the start failure is the news; a failure to stop the others is not let to hide it
        await this.stop().catch(() => {});
        throw e;
      }
    }
  }

  /**
   * Stops every attached consumer, started or not, in reverse order, once; each is stopped even
   * when another fails (the first failure is thrown).
   */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    let failure: unknown;
    for (const consumer of [...this.attached.values()].reverse()) {
      try {
        await consumer.stop();
      } catch (e) {
        failure ??= e;
      }
    }
    if (failure !== undefined) throw failure;
  }
}
