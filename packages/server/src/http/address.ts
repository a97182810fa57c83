import type { FastifyRequest } from 'fastify';
import { AppError } from '../core/errors.js';
import { notServed, parseAddress, type ChannelMessages } from '../core/address.js';

/**
 * The channel messages an HTTP or WebSocket request's path names, read by the one address scheme
 * (core/address.ts) from the decoded path: `/channels/<id>/messages[/<subtopic>]`, under `/ws` for
 * WebSocket. The subtopic is as sent; the messaging service normalises it.
 */
export function channelAddressOf(req: FastifyRequest, options: { ws?: boolean } = {}): ChannelMessages {
  const path = req.url.split('?', 1)[0]!;
  let segments: string[];
  try {
    segments = path.split('/').slice(1).map((s) => decodeURIComponent(s));
  } catch {
    throw new AppError('request.invalid', 'The path is not valid percent-encoding');
  }
  const parsed = parseAddress(segments, options);
  if (!parsed.ok) throw new AppError('route.not_found', parsed.error);
  if (parsed.address.kind !== 'channel.messages') throw new AppError('route.not_found', notServed(parsed.address));
  return parsed.address;
}
