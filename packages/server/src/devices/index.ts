export { DeviceRepository, type Device, type DeviceListQuery, type DeviceStatus } from './repository.js';
export { DeviceService, maxBulkDevices, type NewDevice, type DeviceWithSecret } from './service.js';
