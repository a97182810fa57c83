export { ChannelRepository, type Channel } from './repository.js';
export { ChannelService, maxBulkChannels, type NewChannel } from './service.js';
