import { readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';

/** How one case is measured. */
export interface MeasureOptions {
  /** Timed run, seconds. */
  seconds: number;
  /** Untimed run first, seconds, so the JIT and the caches settle. */
  warmupSeconds: number;
  /**
   * Operations per latency sample. Reading the clock costs tens of nanoseconds, as much as a
   * cached decision, so fast cases time a batch and record the mean per operation.
   */
  batch: number;
  /** Operations in flight at once; each worker awaits its own, as a connection handler does. */
  concurrency: number;
  /** Slow operations: keep going past `seconds` until this many ran, so the percentiles rest on enough samples. */
  minOps?: number;
}

export interface Measurement {
  name: string;
  ops: number;
  /** Operations per second over the timed run. */
  rate: number;
  /** Per-operation latency, ns (mean within a batch; see MeasureOptions.batch). */
  p50: number;
  p99: number;
  batch: number;
  concurrency: number;
}

async function runFor(op: (i: number) => Promise<unknown>, o: MeasureOptions, seconds: number, minOps = 0): Promise<{ ops: number; elapsedNs: number; samples: Float64Array }> {
  const samples: number[] = [];
  const start = process.hrtime.bigint();
  const deadline = start + BigInt(Math.round(seconds * 1e9));
  let next = 0;
  let ops = 0;
  let started = 0;
  const worker = async (): Promise<void> => {
    for (;;) {
      const t0 = process.hrtime.bigint();
      if (t0 >= deadline && started >= minOps) return;
      started += o.batch;
      for (let k = 0; k < o.batch; k++) await op(next++);
      samples.push(Number(process.hrtime.bigint() - t0) / o.batch);
      ops += o.batch;
    }
  };
  await Promise.all(Array.from({ length: o.concurrency }, worker));
  return { ops, elapsedNs: Number(process.hrtime.bigint() - start), samples: Float64Array.from(samples).sort() };
}

/** The p-quantile (0…1) of ascending samples; NaN when there are none. */
export function percentile(sorted: Float64Array, p: number): number {
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)]!;
}

/** Runs `op(i)` for i = 0, 1, 2, … : warm-up, then the timed run. */
export async function measure(name: string, op: (i: number) => Promise<unknown>, o: MeasureOptions): Promise<Measurement> {
  await runFor(op, o, o.warmupSeconds);
  const { ops, elapsedNs, samples } = await runFor(op, o, o.seconds, o.minOps);
  return { name, ops, rate: (ops * 1e9) / elapsedNs, p50: percentile(samples, 0.5), p99: percentile(samples, 0.99), batch: o.batch, concurrency: o.concurrency };
}

export function formatNs(ns: number): string {
  if (ns < 1_000) return `${ns.toFixed(0)} ns`;
  if (ns < 1_000_000) return `${(ns / 1_000).toFixed(ns < 10_000 ? 2 : 1)} µs`;
  return `${(ns / 1_000_000).toFixed(2)} ms`;
}

export function formatRate(rate: number): string {
  return Math.round(rate).toLocaleString('en-US');
}

/** A plain-text table, numbers right-aligned. */
export function table(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

export function measurementTable(results: Measurement[], unit: string): string {
  return table(
    ['case', `${unit}/s`, 'p50', 'p99', 'batch', 'in flight'],
    results.map((r) => [r.name, formatRate(r.rate), formatNs(r.p50), formatNs(r.p99), String(r.batch), String(r.concurrency)]),
  );
}

/** What the figures were measured on: they mean nothing without it. */
export function machine(): string {
  const cpu = cpus();
  // a busy machine halves the figures: say how busy it was
  return `${cpu[0]?.model ?? 'unknown CPU'} × ${cpu.length}, Node ${process.version}, ${process.platform}/${process.arch}, load average ${loadavg()[0]!.toFixed(2)}`;
}

/** `--name value` from the command line, else the environment variable, else the default. */
export function numberOption(name: string, env: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const text = i >= 0 ? process.argv[i + 1] : process.env[env];
  if (text === undefined || text === '') return fallback;
  const n = Number(text);
  if (!Number.isFinite(n) || n < 0) throw new Error(`--${name} / ${env} must be a non-negative number, got ${text}`);
  return n;
}

/**
 * Runs a bench's main in a process of its own: exits with its code after the CLI processes it
 * started are stopped; on a crash, kills its children hard and exits with 2.
 */
export function runBench(main: () => Promise<number>, children: Iterable<{ kill(signal: NodeJS.Signals): unknown }>, cleanup: () => Promise<void>): void {
  main()
    .then(async (code) => {
      await cleanup();
      process.exit(code);
    })
    .catch(async (e: unknown) => {
      console.error(e);
      for (const c of children) c.kill('SIGKILL');
      await cleanup();
      process.exit(2);
    });
}

/** Resident memory of a process, MB (Linux /proc); NaN once it is gone. */
export function rssMb(pid: number | undefined): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

/** The value of a Fleetwire server's metric, the first line of `/metrics` matching `pattern`; 0 when absent (a counter with labels appears once it first counts). */
export async function fleetwireMetric(api: string, pattern: RegExp): Promise<number> {
  const text = await (await fetch(`${api}/metrics`)).text();
  return Number(pattern.exec(text)?.[1] ?? 0);
}

/** Waits until a Fleetwire server's writer has nothing left on the bus (its lag metric); the seconds it took. */
export async function writerDrained(api: string, timeoutMs = 180_000): Promise<number> {
  const t0 = performance.now();
  while ((await fleetwireMetric(api, /^fleetwire_writer_lag_messages (\S+)$/m)) > 0) {
    if (performance.now() - t0 > timeoutMs) throw new Error(`the writer still lags after ${timeoutMs / 1000} s`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return (performance.now() - t0) / 1000;
}
