export { PresenceRepository, intervalGrace, offlineReasons, type OfflineReason, type PresenceState } from './repository.js';
export { PresenceService, maxIntervalSeconds, minIntervalSeconds, type DevicePresence, type FleetSummary, type PresenceBrief, type PresenceChange, type PresenceHistory, type PresenceOptions } from './service.js';
