export { EventLog, eventsTopic, defaultEventLogOptions, type EventLogOptions, type EventListener } from './log.js';
export { EventStore, type EventQuery } from './store.js';
export { eventTypes, membershipTypes, isEventType, parseTypeFilter, typeMatches, eventTypeTable, noEvents, type EventType, type EventRecorder, type FleetEvent, type NewEvent, type Actor, type ActorKind, type Subject } from './types.js';
