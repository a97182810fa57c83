// Following a WebSocket of the platform until Ctrl-C: `fleetwire subscribe` (a channel's messages)
// and `fleetwire events tail` (an organization's events).
import WebSocket from 'ws';
import { CliError, Refusal } from './errors.js';
import { note } from './output.js';
import { problemOf } from './session.js';

/**
 * Opens `url` with the session's token and hands each frame to `onFrame` until Ctrl-C or SIGTERM
 * (resolves: exit 0) or until the platform ends it (rejects with its close code and reason, or with
 * the refusal of the upgrade). `opened` is the line told on standard error once it is open; `what`
 * names the stream in the error ("the subscription", "the event stream").
 */
export async function follow(url: string, token: string | undefined, base: string, how: { opened: string; what: string; onFrame(data: Buffer): void }): Promise<void> {
  const socket = new WebSocket(url, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  let stopping = false;
  const stop = () => {
    stopping = true;
    socket.close(1000);
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  await new Promise<void>((resolve, reject) => {
    socket.on('unexpected-response', (_req, res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => {
        let body: unknown = text;
        try {
          body = JSON.parse(text);
        } catch {
          // not a problem document
        }
        reject(new Refusal(problemOf(new Response(null, { status: res.statusCode ?? 500, statusText: res.statusMessage ?? '' }), body)));
      });
    });
    socket.on('open', () => note(how.opened));
    socket.on('message', (data: Buffer) => how.onFrame(data));
    socket.on('error', (e: NodeJS.ErrnoException) => reject(new CliError(`cannot reach the platform at ${base}: ${e.code ?? e.message}`)));
    socket.on('close', (code, reason) => {
      if (stopping || code === 1000) return resolve();
      reject(new CliError(`the platform ended ${how.what} (${code}${reason.length ? `: ${reason.toString()}` : ''})`));
    });
  });
}
