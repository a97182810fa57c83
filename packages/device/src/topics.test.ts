import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FleetwireError } from './errors.js';
import { messageFilter, messageTopic, parseMessageTopic, topicMatches } from './topics.js';

const invalid = (f: () => unknown, pattern: RegExp) =>
  assert.throws(f, (e: unknown) => e instanceof FleetwireError && e.code === 'invalid_topic' && pattern.test(e.message));

test('a message topic is channels/<id>/messages[/<subtopic>], empty segments dropped', () => {
  assert.equal(messageTopic('c1'), 'channels/c1/messages');
  assert.equal(messageTopic('c1', 'lab/floor-2'), 'channels/c1/messages/lab/floor-2');
  assert.equal(messageTopic('c1', '/lab//floor-2/'), 'channels/c1/messages/lab/floor-2');
});

test('publishing refuses wildcards and the characters the platform refuses', () => {
  invalid(() => messageTopic('c1', 'lab/+'), /for subscribing/);
  invalid(() => messageTopic('c1', 'lab/#'), /for subscribing/);
  invalid(() => messageTopic('c1', 'lab.floor'), /may not hold/);
  invalid(() => messageTopic('c1', 'lab floor'), /may not hold/);
  invalid(() => messageTopic('', 'lab'), /channel id is required/);
  invalid(() => messageTopic('c1/x'), /no channel id/);
  invalid(() => messageTopic('+'), /no channel id/);
});

test('a subscription covers the whole channel unless a subtopic narrows it', () => {
  assert.equal(messageFilter('c1'), 'channels/c1/messages/#');
  assert.equal(messageFilter('c1', ''), 'channels/c1/messages');
  assert.equal(messageFilter('c1', 'lab/+/temp'), 'channels/c1/messages/lab/+/temp');
  invalid(() => messageFilter('c1', '#/lab'), /# must be the last segment/);
  invalid(() => messageFilter('c1', 'lab+'), /whole segments/);
});

test('filters match topics as MQTT §4.7 says', () => {
  assert.ok(topicMatches('channels/c1/messages/#', 'channels/c1/messages'));
  assert.ok(topicMatches('channels/c1/messages/#', 'channels/c1/messages/a/b'));
  assert.ok(topicMatches('channels/c1/messages/+/t', 'channels/c1/messages/a/t'));
  assert.ok(!topicMatches('channels/c1/messages/+/t', 'channels/c1/messages/a/b/t'));
  assert.ok(!topicMatches('channels/c1/messages', 'channels/c1/messages/a'));
  assert.ok(!topicMatches('channels/c1/messages/#', 'channels/c2/messages'));
});

test('a received topic gives its channel and subtopic', () => {
  assert.deepEqual(parseMessageTopic('channels/c1/messages'), { channel: 'c1', subtopic: '' });
  assert.deepEqual(parseMessageTopic('channels/c1/messages/lab/2'), { channel: 'c1', subtopic: 'lab/2' });
  assert.equal(parseMessageTopic('other/topic'), undefined);
});
