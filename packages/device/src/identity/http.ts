/**
 * JSON requests to the platform's HTTP API with node:http(s), which, unlike fetch, presents a
 * client certificate (`POST /renew` authenticates the device by its certificate alone) and trusts
 * a CA given per request. A refusal (RFC 9457 problem document) becomes a `PlatformRefusedError`
 * with the platform's code.
 */
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { FleetwireError, PlatformRefusedError, type PlatformErrorCode } from '../errors.js';

export interface PlatformRequest {
  method: 'GET' | 'POST';
  url: string;
  body?: unknown;
  /** `Bearer …`, for the operator routes `simulate` calls. */
  authorization?: string;
  /** CA(s) to trust for https, PEM. */
  ca?: string | string[];
  /** The client certificate (PEM, with its chain) and its key. */
  cert?: string;
  key?: string;
  timeoutMs?: number;
}

const defaultTimeoutMs = 30_000;
/** Most bytes of an answer read: an enrolment's is a few KiB. */
const maxAnswerBytes = 1 << 20;

/** Sends the request; resolves with the JSON of a 2xx answer (undefined if it has none), rejects with the refusal otherwise. */
export async function platformRequest<T>(r: PlatformRequest): Promise<T> {
  const url = new URL(r.url);
  const body = r.body === undefined ? undefined : Buffer.from(JSON.stringify(r.body));
  const send = url.protocol === 'https:' ? httpsRequest : url.protocol === 'http:' ? httpRequest : undefined;
  if (!send) throw new FleetwireError('invalid_options', `the platform's address must be http:// or https://, got ${JSON.stringify(r.url)}`);
  const headers: Record<string, string> = { accept: 'application/json, application/problem+json' };
  if (body) Object.assign(headers, { 'content-type': 'application/json', 'content-length': String(body.length) });
  if (r.authorization) headers.authorization = r.authorization;
  const res = await new Promise<{ status: number; type: string; text: string }>((resolve, reject) => {
    const req = send(url, {
      method: r.method,
      headers,
      timeout: r.timeoutMs ?? defaultTimeoutMs,
      ...(r.ca !== undefined ? { ca: r.ca } : {}),
      ...(r.cert !== undefined ? { cert: r.cert } : {}),
      ...(r.key !== undefined ? { key: r.key } : {}),
    }, (answer: IncomingMessage) => {
      const chunks: Buffer[] = [];
      let size = 0;
      answer.on('data', (c: Buffer) => {
        size += c.length;
        if (size > maxAnswerBytes) return void answer.destroy(new Error(`the answer is over ${maxAnswerBytes} bytes`));
        chunks.push(c);
      });
      answer.on('error', reject);
      answer.on('end', () => resolve({ status: answer.statusCode ?? 0, type: String(answer.headers['content-type'] ?? ''), text: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${r.timeoutMs ?? defaultTimeoutMs} ms`)));
    req.on('error', reject);
    req.end(body);
  }).catch((e: unknown) => {
    throw new FleetwireError('platform_unreachable', `${r.method} ${url.origin}${url.pathname} failed: ${(e as Error).message}`, { cause: e });
  });
  let json: unknown;
  try {
    json = res.text ? JSON.parse(res.text) : undefined;
  } catch {
    json = undefined;
  }
  if (res.status >= 200 && res.status < 300) return json as T;
  const problem = json as { code?: unknown; detail?: unknown; reason?: unknown } | undefined;
  if (res.type.startsWith('application/problem+json') && typeof problem?.code === 'string' && problem.code.includes('.')) {
    throw new PlatformRefusedError(problem.code as PlatformErrorCode, res.status, typeof problem.detail === 'string' ? problem.detail : '', typeof problem.reason === 'string' ? problem.reason : undefined);
  }
  throw new FleetwireError('unexpected_response', `${r.method} ${url.pathname}: HTTP ${res.status} ${res.text.slice(0, 200)}`);
}
