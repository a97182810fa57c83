// wrk (https://github.com/wg/wrk) as the load generator of bench/http-publish, when installed:
// C and epoll, so it takes less of the machine than the Node generator does and leaves more to the
// servers. Debian/Ubuntu: `sudo apt-get install -y wrk`; macOS: `brew install wrk`.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LoadRequest } from './load.js';
import { procTicks } from './processes.js';

export function wrkAvailable(): boolean {
  return spawnSync('wrk', ['--version'], { stdio: 'ignore' }).error === undefined;
}

export interface WrkRun {
  /** Answers per second. */
  rate: number;
  p50: number;
  p99: number;
  /** Answers, and how many had a status other than 2xx/3xx, and socket errors. */
  requests: number;
  non2xx: number;
  socketErrors: number;
  /** CPU wrk used, as a share of one core. */
  cpu: number;
}

/** A Lua long string: no escaping, as long as its closing bracket occurs neither in the text nor across its end (a JSON array ends in "]"). */
function luaString(s: string): string {
  let level = 0;
  while (`${s}]`.includes(`]${'='.repeat(level)}]`)) level++;
  return `[${'='.repeat(level)}[${s}]${'='.repeat(level)}]`;
}

function script(path: string, contentType: string, requests: LoadRequest[]): string {
  const specs = requests.map((r) => `  { ${luaString(r.authorization)}, ${luaString(r.body)} },`).join('\n');
  return `-- written by bench/http-publish: one POST after another, cycling through the devices
local specs = {
${specs}
}
local i = 0
request = function()
  i = i + 1
  local s = specs[(i % #specs) + 1]
  return wrk.format("POST", ${luaString(path)}, { ["Content-Type"] = ${luaString(contentType)}, ["Authorization"] = s[1] }, s[2])
end
`;
}

function duration(text: string): number {
  const m = /^([\d.]+)(us|ms|s|m)$/.exec(text.trim());
  if (!m) throw new Error(`wrk printed a latency I cannot read: ${text}`);
  return Number(m[1]) * { us: 1e3, ms: 1e6, s: 1e9, m: 60e9 }[m[2] as 'us' | 'ms' | 's' | 'm'];
}

/** Runs wrk once: `connections` keep-alive connections on one thread for `seconds`. */
export async function runWrk(url: string, contentType: string, requests: LoadRequest[], connections: number, seconds: number): Promise<WrkRun> {
  const dir = mkdtempSync(join(tmpdir(), 'fleetwire-wrk-'));
  try {
    const u = new URL(url);
    const file = join(dir, 'post.lua');
    writeFileSync(file, script(u.pathname, contentType, requests));
    const child = spawn('wrk', ['-t1', `-c${connections}`, `-d${Math.max(1, Math.round(seconds))}s`, '--latency', '-s', file, `${u.origin}${u.pathname}`], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const cpuTicks = await new Promise<number>((resolve) => {
      let ticks = 0;
      // wrk's own CPU, sampled from /proc while it runs (its children: none)
      const timer = setInterval(() => (ticks = procTicks(child.pid) ?? ticks), 250);
      child.once('exit', () => {
        clearInterval(timer);
        resolve(ticks);
      });
    });
    const code = child.exitCode;
    // wrk reports a script that does not load on standard error, then sends plain GETs anyway
    if (code !== 0 || err.trim()) throw new Error(`wrk failed (exit ${code}): ${err}${out}`);
    const latency = (p: string) => {
      const m = new RegExp(`^\\s*${p}%\\s+(\\S+)`, 'm').exec(out);
      if (!m) throw new Error(`wrk printed no ${p}% latency: ${out}`);
      return duration(m[1]!);
    };
    const requestsDone = Number(/(\d+) requests in/.exec(out)?.[1] ?? NaN);
    const rate = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? NaN);
    const errors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
    return {
      rate,
      p50: latency('50'),
      p99: latency('99'),
      requests: requestsDone,
      non2xx: Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0),
      socketErrors: errors ? errors.slice(1).reduce((s, n) => s + Number(n), 0) : 0,
      cpu: cpuTicks / 100 / Math.max(1, Math.round(seconds)),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
