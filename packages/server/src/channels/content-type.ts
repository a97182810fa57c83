/**
 * The content types a channel can take for the payloads that come without one: MQTT 3.1.1, MQTT 5
 * without the Content Type property, CoAP without Content-Format, HTTP without Content-Type,
 * WebSocket frames without `?content_type=`. A type the protocol carries still wins.
 */
export const channelContentTypes = ['application/senml+json', 'application/json', 'application/octet-stream'] as const;

export type ChannelContentType = (typeof channelContentTypes)[number];

/** What a new channel takes, and what every channel made before content types were per channel got. */
export const defaultChannelContentType: ChannelContentType = 'application/senml+json';

export function isChannelContentType(value: string): value is ChannelContentType {
  return (channelContentTypes as readonly string[]).includes(value);
}
