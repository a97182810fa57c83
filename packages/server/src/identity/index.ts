export { IdentityService, maxBulkRegistrations, trustTopic, revocationReasons, type Caller, type Enrolled, type IdentityOptions, type NewRegistration } from './service.js';
export { IdentityStore, type DeviceCertificate, type EnrolmentToken, type IdentityEvent, type Registration } from './store.js';
