import { AppError, unknownIds } from '../core/errors.js';
import { iso, type Clock } from '../core/clock.js';
import { isUuid, uuidv7 } from '../core/ids.js';
import { noInvalidation, type AccessInvalidation } from '../auth/decision.js';
import type { ListQuery } from '../db/list.js';
import type { Channel, ChannelRepository, ChannelRouting } from './repository.js';
import { defaultChannelContentType, type ChannelContentType } from './content-type.js';

export interface NewChannel {
  name: string;
  tags?: string[];
  metadata?: Record<string, unknown>;
  /** Default application/senml+json. */
  content_type?: ChannelContentType;
}

export const maxBulkChannels = 1000;

export class ChannelService {
  constructor(
    private readonly repo: ChannelRepository,
    private readonly clock: Clock,
    private readonly access: AccessInvalidation = noInvalidation,
  ) {}

  async create(orgId: string, input: NewChannel): Promise<Channel> {
    const [c] = await this.createMany(orgId, [input]);
    return c!;
  }

  async createMany(orgId: string, inputs: NewChannel[]): Promise<Channel[]> {
    if (inputs.length > maxBulkChannels) throw new AppError('request.invalid', `At most ${maxBulkChannels} channels per request, got ${inputs.length}`);
    const now = this.clock.now();
    const rows: Channel[] = inputs.map((c) => ({
      id: uuidv7(now),
      org_id: orgId,
      name: c.name,
      tags: [...new Set(c.tags ?? [])],
      metadata: c.metadata ?? {},
      content_type: c.content_type ?? defaultChannelContentType,
      created_at: iso(now),
      updated_at: iso(now),
    }));
    await this.repo.insertMany(rows);
    for (const r of rows) this.access.invalidateChannel(r.id);
    return rows;
  }

  async get(orgId: string, id: string): Promise<Channel> {
    const c = isUuid(id) ? await this.repo.find(orgId, id) : undefined;
    if (!c) throw new AppError('channel.not_found');
    return c;
  }

  /** The organization a channel belongs to and its content type; channel.not_found when there is no such channel. */
  async routing(id: string): Promise<ChannelRouting> {
    const r = isUuid(id) ? await this.repo.routing(id) : undefined;
    if (!r) throw new AppError('channel.not_found');
    return r;
  }

  list(orgId: string, q: ListQuery): Promise<{ total: number; items: Channel[] }> {
    return this.repo.list(orgId, q);
  }

  async update(orgId: string, id: string, patch: Partial<NewChannel>): Promise<Channel> {
    const before = await this.get(orgId, id);
    const c = await this.repo.update(orgId, id, { ...patch, tags: patch.tags && [...new Set(patch.tags)] }, iso(this.clock.now()));
    if (!c) throw new AppError('channel.not_found');
    // the content type travels with the cached access answers: every process drops them
    if (c.content_type !== before.content_type) this.access.invalidateChannel(id);
    return c;
  }

  async delete(orgId: string, id: string): Promise<void> {
    if (!isUuid(id) || !(await this.repo.delete(orgId, id))) throw new AppError('channel.not_found');
    this.access.invalidateChannel(id);
  }

  /** Throws channel.not_found naming the ids that are not channels of the organization. */
  async requireAll(orgId: string, ids: string[]): Promise<void> {
    const missing = await this.repo.missing(orgId, ids);
    if (missing.length > 0) throw unknownIds('channel.not_found', 'channel', missing);
  }
}
