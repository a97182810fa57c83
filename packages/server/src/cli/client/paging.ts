// List commands show one page of the server's (--limit, --offset), or every page with --all.
import { InvalidArgumentError, type Command } from 'commander';
import { note, printJson, printTable, type Column, type OutputOptions } from './output.js';

export interface PageOptions extends OutputOptions {
  limit?: number;
  offset?: number;
  all?: boolean;
}

/** The largest page the list routes serve; --all asks for pages of this size. */
const maxPage = 1000;

function count(name: string, min: number, max: number) {
  return (raw: string): number => {
    const n = Number(raw);
    if (!/^\d+$/.test(raw) || n < min || n > max) throw new InvalidArgumentError(`${name} is a whole number from ${min} to ${max}`);
    return n;
  };
}

export function pagingOptions(c: Command): Command {
  return c
    .option('--limit <n>', `how many per page (1 to ${maxPage}; the server's default otherwise)`, count('--limit', 1, maxPage))
    .option('--offset <n>', 'how many to skip', count('--offset', 0, 1_000_000_000))
    .option('--all', 'every page, from --offset on')
    .option('--json', 'print the JSON page ({ total, offset, limit, <items> })');
}

type Page<K extends string, T> = { total: number; offset: number; limit: number } & Record<K, T[]>;

/** Fetches one page, or every page from `offset` with `all`; the result has the server's shape. */
export async function fetchPages<K extends string, T>(key: K, options: PageOptions, fetchPage: (q: { offset?: number; limit?: number }) => Promise<Page<K, T>>): Promise<Page<K, T>> {
  const q = { ...(options.offset !== undefined ? { offset: options.offset } : {}), ...(options.limit !== undefined ? { limit: options.limit } : {}) };
  if (!options.all) return fetchPage(q);
  const start = options.offset ?? 0;
  const items: T[] = [];
  let total = 0;
  for (;;) {
    const page = await fetchPage({ offset: start + items.length, limit: options.limit ?? maxPage });
    total = page.total;
    items.push(...page[key]);
    if (page[key].length === 0 || start + items.length >= total) break;
  }
  return { total, offset: start, limit: items.length, [key]: items } as Page<K, T>;
}

/** Prints a page: a table, and on standard error where it sits in the whole when it is not all of it. */
export async function listCommand<K extends string, T>(key: K, options: PageOptions, fetchPage: (q: { offset?: number; limit?: number }) => Promise<Page<K, T>>, columns: Column<T>[]): Promise<void> {
  const page = await fetchPages(key, options, fetchPage);
  if (options.json) return printJson(page);
  printTable(page[key], columns);
  const shown = page[key].length;
  if (page.offset > 0 || page.offset + shown < page.total) {
    const more = page.offset + shown < page.total ? `; --offset ${page.offset + shown} for the next page, --all for every one` : '';
    note(`${shown === 0 ? 'none' : `${page.offset + 1}-${page.offset + shown}`} of ${page.total}${more}`);
  }
}
