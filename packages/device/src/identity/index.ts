/** Certificate identity for devices: the key store, enrolment, renewal, and connecting with the certificate. */
export { enrol, ensureDeviceKey, renew, type EnrolOptions, type Identity, type RenewOptions } from './enrol.js';
export { connectEnrolled, enrolledDevice, defaultRenewal, type EnrolledDeviceOptions, type RenewalOptions } from './connect.js';
export { IdentityStore, defaultStoreDir, type StoredIdentity } from './store.js';
export { certificateRequest, publicKeyPem, readCertificate } from './keys.js';
