// test-database: none
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkTopicFilter, checkTopicName, parseSharedFilter, topicMatches } from './topics.js';

test('topic filter matching follows MQTT §4.7', () => {
  const cases: [string, string, boolean][] = [
    ['sport/tennis/player1/#', 'sport/tennis/player1', true],
    ['sport/tennis/player1/#', 'sport/tennis/player1/ranking', true],
    ['sport/tennis/player1/#', 'sport/tennis/player1/score/wimbledon', true],
    ['sport/#', 'sport', true],
    ['#', 'anything/at/all', true],
    ['sport/tennis/+', 'sport/tennis/player1', true],
    ['sport/tennis/+', 'sport/tennis/player1/ranking', false],
    ['sport/+', 'sport', false],
    ['sport/+', 'sport/', true],
    ['+/+', '/finance', true],
    ['/+', '/finance', true],
    ['+', '/finance', false],
    ['+/monitor/Clients', '$SYS/monitor/Clients', false],
    ['#', '$SYS/x', false],
    ['$SYS/#', '$SYS/x', true],
    ['$SYS/monitor/+', '$SYS/monitor/Clients', true],
    ['a/b', 'a/b', true],
    ['a/b', 'a/c', false],
    ['a/+/c', 'a//c', true],
    ['a/#', 'a', true],
    ['a/b/#', 'a', false],
    // an empty last level is a level like any other
    ['+/', 'a/', true],
    ['b/+/', 'b//', true],
    ['a/', 'a', false],
    ['a/+', 'a', false],
    ['a/#', 'a/', true],
  ];
  for (const [filter, topic, expected] of cases) assert.equal(topicMatches(filter, topic), expected, `${filter} ~ ${topic}`);
});

test('topic names and filters are validated', () => {
  assert.equal(checkTopicName('a/b').ok, true);
  assert.equal(checkTopicName('').ok, false);
  assert.equal(checkTopicName('a/+').ok, false);
  assert.equal(checkTopicName('a/#').ok, false);
  assert.equal(checkTopicName('a\u0000b').ok, false);
  for (const good of ['#', 'a/#', '+', '+/a/+', 'a//b', '/']) assert.equal(checkTopicFilter(good).ok, true, good);
  for (const bad of ['', 'a/#/b', 'a#', 'a/b#', 'a+', 'a/+b', '#/a']) assert.equal(checkTopicFilter(bad).ok, false, bad);
});

test('shared subscription filters', () => {
  assert.deepEqual(parseSharedFilter('$share/g1/a/b'), { group: 'g1', filter: 'a/b' });
  assert.equal(parseSharedFilter('a/b'), undefined);
  assert.ok('error' in (parseSharedFilter('$share/g1') as object));
  assert.ok('error' in (parseSharedFilter('$share//a') as object));
  assert.ok('error' in (parseSharedFilter('$share/g+/a') as object));
});
