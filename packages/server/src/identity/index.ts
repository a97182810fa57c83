export { IdentityService, maxBulkRegistrations, maxManufacturerSerials, trustTopic, revocationReasons, type Caller, type Enrolled, type IdentityOptions, type NewRegistration } from './service.js';
export { IdentityStore, type DeviceCertificate, type EnrolmentToken, type IdentityEvent, type ManufacturerCa, type Registration } from './store.js';
