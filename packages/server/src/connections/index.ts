export { ConnectionRepository, type ConnectionType, type ConnectedDevice, type ConnectedChannel } from './repository.js';
export { ConnectionService, maxConnectionsPerRequest, type ConnectionRequest } from './service.js';
