// Random topic names and filters for property tests of topic matching (src/mqtt/topic-trie.test.ts,
// src/mqtt/subscriptions.test.ts), from a seeded generator so that a failure reproduces.

export { seededRandom as random } from './random.js';

// few words so that filters and topics meet often; '' and '$' levels for the edge cases
const words = ['a', 'b', 'c', '', '$SYS', '$x'];

export function randomTopic(r: () => number): string {
  const n = 1 + Math.floor(r() * 4);
  return Array.from({ length: n }, () => words[Math.floor(r() * words.length)]!).join('/');
}

export function randomFilter(r: () => number): string {
  const n = 1 + Math.floor(r() * 4);
  const levels: string[] = [];
  for (let i = 0; i < n; i++) {
    const x = r();
    if (i === n - 1 && x < 0.2) levels.push('#');
    else if (x < 0.45) levels.push('+');
    else levels.push(words[Math.floor(r() * words.length)]!);
  }
  return levels.join('/');
}
