// A node:test reporter that lists how long each test file ran, slowest first (from the summary each
// file's process reports: its tests and hooks, not the node and tsx start before them).
// scripts/test.mjs adds it beside the spec reporter.
export default async function* durations(source) {
  const rows = [];
  for await (const event of source) {
    if (event.type === 'test:summary' && event.data.file) rows.push([event.data.file.replace(process.cwd() + '/', ''), event.data.duration_ms / 1000]);
  }
  if (rows.length < 2) return;
  rows.sort((a, b) => b[1] - a[1]);
  yield `\nseconds per test file (${process.env.FLEETWIRE_TEST_DATABASE ?? 'sqlite'} pass)\n`;
  for (const [file, s] of rows) yield `${s.toFixed(1).padStart(7)}  ${file}\n`;
}
