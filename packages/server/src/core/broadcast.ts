/**
 * Fire-and-forget control events to every process sharing the message bus (this one included),
 * e.g. "drop your cached authorization for device X". Not stored; best effort. The bus implements
 * it; the services that only need control events (sessions, authorization caches) take this
 * instead of the whole bus, so they stay below the messaging layer.
 */
export interface Broadcasts {
  broadcast(topic: string, data: string): void;
  onBroadcast(topic: string, handler: (data: string) => void): { unsubscribe(): void };
}
