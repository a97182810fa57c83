import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';

export interface Received {
  topic: string;
  payload: Buffer;
  packet: mqtt.IPublishPacket;
}

export type TestClient = MqttClient & { received: Received[] };

/** An MQTT.js client whose received messages are collected from before CONNACK (a resumed session sends at once). */
export async function mqttClient(url: string, opts: IClientOptions, opened: MqttClient[] = []): Promise<TestClient> {
  const c = mqtt.connect(url, { reconnectPeriod: 0, connectTimeout: 5000, ...opts }) as TestClient;
  c.received = [];
  c.on('message', (topic, payload, packet) => c.received.push({ topic, payload, packet }));
  opened.push(c);
  await new Promise<void>((resolve, reject) => {
    c.once('connect', () => resolve());
    c.once('error', reject);
    c.once('close', () => reject(new Error('closed before CONNACK')));
  });
  return c;
}

/** The CONNACK reason of a refused connection (MQTT 5 reason code or 3.1.1 return code). */
export function refusal(url: string, opts: IClientOptions): Promise<number> {
  return new Promise((resolve, reject) => {
    const c = mqtt.connect(url, { reconnectPeriod: 0, connectTimeout: 5000, ...opts });
    c.once('connect', () => {
      c.end(true);
      reject(new Error('connected'));
    });
    c.once('error', (e) => {
      c.end(true);
      resolve((e as unknown as { code: number }).code);
    });
  });
}
