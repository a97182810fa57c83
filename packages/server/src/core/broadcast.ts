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

/** Listens to a topic whose messages are JSON (the others' own format): a message that is not JSON is ignored. */
export function onJsonBroadcast<T>(bus: Broadcasts, topic: string, handler: (value: T) => void): { unsubscribe(): void } {
  return bus.onBroadcast(topic, (data) => {
    let value: T;
    try {
      value = JSON.parse(data) as T;
    } catch {
      return;
    }
    handler(value);
  });
}
