import { AppError } from '../core/errors.js';
import { iso, type Clock } from '../core/clock.js';
import { noInvalidation, type AccessInvalidation } from '../auth/decision.js';
import type { ChannelService } from '../channels/service.js';
import type { DeviceService } from '../devices/service.js';
import type { ConnectedChannel, ConnectedDevice, ConnectionRepository, ConnectionType } from './repository.js';

export interface ConnectionRequest {
  device_ids: string[];
  channel_ids: string[];
  types: ConnectionType[];
}

/** Largest device × channel × type product one request may touch. */
export const maxConnectionsPerRequest = 100_000;

export class ConnectionService {
  constructor(
    private readonly repo: ConnectionRepository,
    private readonly devices: DeviceService,
    private readonly channels: ChannelService,
    private readonly clock: Clock,
    private readonly access: AccessInvalidation = noInvalidation,
  ) {}

  private async check(orgId: string, req: ConnectionRequest): Promise<ConnectionRequest> {
    const r = { device_ids: [...new Set(req.device_ids)], channel_ids: [...new Set(req.channel_ids)], types: [...new Set(req.types)] };
    const size = r.device_ids.length * r.channel_ids.length * r.types.length;
    if (size > maxConnectionsPerRequest) throw new AppError('request.invalid', `One request may touch at most ${maxConnectionsPerRequest} connections (devices × channels × types), this one ${size}`);
    await this.devices.requireAll(orgId, r.device_ids);
    await this.channels.requireAll(orgId, r.channel_ids);
    return r;
  }

  async connect(orgId: string, req: ConnectionRequest): Promise<void> {
    const r = await this.check(orgId, req);
    await this.repo.connect(orgId, r.device_ids, r.channel_ids, r.types, iso(this.clock.now()));
    this.access.invalidateConnections(r.device_ids);
  }

  async disconnect(orgId: string, req: ConnectionRequest): Promise<void> {
    const r = await this.check(orgId, req);
    await this.repo.disconnect(orgId, r.device_ids, r.channel_ids, r.types);
    this.access.invalidateConnections(r.device_ids);
  }

  async channelDevices(orgId: string, channelId: string, offset: number, limit: number): Promise<{ total: number; items: ConnectedDevice[] }> {
    await this.channels.get(orgId, channelId);
    return this.repo.channelDevices(orgId, channelId, offset, limit);
  }

  async deviceChannels(orgId: string, deviceId: string, offset: number, limit: number): Promise<{ total: number; items: ConnectedChannel[] }> {
    await this.devices.get(orgId, deviceId);
    return this.repo.deviceChannels(orgId, deviceId, offset, limit);
  }
}
