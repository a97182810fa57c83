// A minimal Chrome DevTools Protocol client over the inspector's WebSocket, for the memory bench:
// a full garbage collection before the heap is read (the heap a bench reads otherwise holds
// whatever garbage the last connects left), the heap's size, and heap snapshots.
import { createWriteStream } from 'node:fs';

interface Reply {
  id?: number;
  method?: string;
  params?: Record<string, unknown>;
  result?: Record<string, unknown>;
  error?: { message: string };
}

export class Inspector {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (r: Record<string, unknown>) => void; reject: (e: Error) => void }>();
  private readonly listeners = new Map<string, (params: Record<string, unknown>) => void>();

  private constructor(private readonly ws: WebSocket) {
    ws.onmessage = (e) => {
      const m = JSON.parse(String(e.data)) as Reply;
      if (m.id !== undefined) {
        const p = this.pending.get(m.id);
        this.pending.delete(m.id);
        if (m.error) p?.reject(new Error(m.error.message));
        else p?.resolve(m.result ?? {});
      } else if (m.method) {
        this.listeners.get(m.method)?.(m.params ?? {});
      }
    };
  }

  /** The main thread of the process whose inspector listens on `port` (`node --inspect=127.0.0.1:<port>`). */
  static async open(port: number): Promise<Inspector> {
    const targets = (await (await fetch(`http://127.0.0.1:${port}/json/list`)).json()) as { webSocketDebuggerUrl: string }[];
    const ws = new WebSocket(targets[0]!.webSocketDebuggerUrl);
    await new Promise<void>((resolve, reject) => {
      ws.onopen = () => resolve();
      ws.onerror = () => reject(new Error(`no inspector on port ${port}`));
    });
    return new Inspector(ws);
  }

  call(method: string, params: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
    const id = this.nextId++;
    this.ws.send(JSON.stringify({ id, method, params }));
    return new Promise((resolve, reject) => this.pending.set(id, { resolve, reject }));
  }

  /** Bytes of V8 heap in use after a full collection. */
  async heapUsedAfterGc(): Promise<number> {
    // twice: the first collection runs finalizers whose objects the second one frees
    await this.call('HeapProfiler.collectGarbage');
    await this.call('HeapProfiler.collectGarbage');
    return (await this.call('Runtime.getHeapUsage')).usedSize as number;
  }

  /** Writes a heap snapshot (it collects garbage first) to `file`, loadable in Chrome DevTools' Memory tab. */
  async writeSnapshot(file: string): Promise<void> {
    const out = createWriteStream(file);
    this.listeners.set('HeapProfiler.addHeapSnapshotChunk', (p) => out.write(p.chunk as string));
    await this.call('HeapProfiler.takeHeapSnapshot', { reportProgress: false });
    this.listeners.delete('HeapProfiler.addHeapSnapshotChunk');
    await new Promise<void>((resolve, reject) => out.end((e?: Error | null) => (e ? reject(e) : resolve())));
  }

  close(): void {
    this.ws.close();
  }
}
