export { GroupRepository, type Group } from './repository.js';
export { GroupService, maxGroupDevicesPerRequest, type NewGroup } from './service.js';
