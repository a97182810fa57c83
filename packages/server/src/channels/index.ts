export { ChannelRepository, type Channel, type ChannelRouting } from './repository.js';
export { ChannelService, maxBulkChannels, type NewChannel } from './service.js';
export { channelContentTypes, defaultChannelContentType, isChannelContentType, type ChannelContentType } from './content-type.js';
