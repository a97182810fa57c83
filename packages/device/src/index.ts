/**
 * Fleetwire's device SDK: connect a device to Fleetwire over MQTT, publish SenML, JSON or bytes
 * to its channels, subscribe, and stay connected.
 */
export { connectDevice, FleetwireDevice } from './device.js';
export type { ClientCertificate, DeviceEvents, DeviceMessage, DeviceOptions, DeviceState, MessageHandler, PublishOptions, QoS, SubscribeOptions, Subscription } from './device.js';
export { backoffDelay, defaultBackoff, type BackoffOptions } from './backoff.js';
export { validateSenml, senmlContentType, type SenmlPack, type SenmlRecord } from './senml.js';
export { messageFilter, messageTopic, parseMessageTopic } from './topics.js';
export { ConnectionRefusedError, FleetwireError, OutboxFullError, PublishRefusedError, SenmlError, SubscribeRefusedError, PlatformRefusedError, type FleetwireErrorCode, type PlatformErrorCode } from './errors.js';
export * from './identity/index.js';
export { DeviceTwin, TwinRefusedError, type DeltaHandler, type TwinDelta, type TwinDocument, type TwinOptions, type TwinUpdateResult } from './twin.js';
export { sendHeartbeat, startHeartbeat, type Heartbeat, type HeartbeatOptions } from './presence.js';
