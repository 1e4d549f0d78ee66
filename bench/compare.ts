/**
 * Compares two bench summaries (`bench/results/<date>-all[-quick].json`) figure by figure, so a
 * regression shows as a number in review. Not a gate: bench machines are noisy, so this flags
 * and never fails.
 *
 * A figure is any number in a bench's results, named by its path (`projector.catch_up.peak_rss_mb`).
 * Whether more is better is read from the name, by the suffix conventions the benches follow:
 * rates, shares and ratios up; times, memory, CPU, lag and losses down; anything else (counts,
 * settings) is shown but never flagged.
 */
import { readFileSync } from 'node:fs';

/** A drop beyond this share of the earlier figure is flagged. */
export const FLAG_DROP = 0.15;

/** Keys that describe a run rather than measure it. */
const NOT_FIGURES = new Set([
  'date',
  'quick',
  'machine',
  'settings',
  'targets',
  'pass',
  'plan',
  'round',
]);

/** Arrays longer than this are samples (time series), not rows of a table. */
const MAX_ROWS = 20;

export type Better = 'higher' | 'lower' | undefined;

/** Every figure of `results`, by path. */
export function figures(results: unknown, path = ''): Map<string, number> {
  const out = new Map<string, number>();
  const visit = (value: unknown, at: string): void => {
    if (typeof value === 'number' && Number.isFinite(value)) {
      out.set(at, value);
      return;
    }
    if (Array.isArray(value)) {
      if (value.length > MAX_ROWS) return;
      value.forEach((row, i) => visit(row, `${at}[${rowName(row) ?? i}]`));
      return;
    }
    if (value === null || typeof value !== 'object') return;
    for (const [key, child] of Object.entries(value)) {
      if (NOT_FIGURES.has(key)) continue;
      visit(child, at ? `${at}.${key}` : key);
    }
  };
  visit(results, path);
  return out;
}

/** A row of a bench's table names itself by these fields, when it has them. */
function rowName(row: unknown): string | undefined {
  if (row === null || typeof row !== 'object') return undefined;
  const r = row as Record<string, unknown>;
  const parts = ['name', 'run', 'scenario', 'target', 'mode', 'app', 'round']
    .map((k) => r[k])
    .filter((v): v is string | number => typeof v === 'string' || typeof v === 'number');
  return parts.length > 0 ? parts.join(' ') : undefined;
}

/**
 * Which way is better for the figure at `path`: from its own name; a count is neither; else from
 * the nearest ancestor that says (`lag.worker_max` is a lag, `per_fetch_ms.pages_mean` a time,
 * `rss.projector.max_mb` memory; `lag.rate` is a rate and `lag.events` a count, neither).
 */
export function better(path: string): Better {
  const [own = '', ...ancestors] = path
    .split('.')
    .map((n) => n.replace(/\[.*\]$/, '').toLowerCase())
    .reverse();
  const direction = betterByName(own);
  if (direction !== undefined || /rate|slope/.test(own) || COUNT.test(own)) return direction;
  for (const name of ancestors) {
    if (/(^|_)ms$|^(lag|rss|latency)$/.test(name)) return 'lower';
  }
  return undefined;
}

/** Numbers of things: more or fewer is the workload's doing, not a regression. */
const COUNT =
  /^(events|count|requests|outcomes|reports|rows|items|calls|plaid_calls|coalesced|published|answered_200|events_on_topic|pages|fetches)$/;

function betterByName(name: string): Better {
  if (/per_s$|per_s_|per_second|share|_pct$|percent|(^|_)ratio($|_)|throughput/.test(name)) {
    return 'higher';
  }
  // CPU seconds of a run of fixed length grow with the work done: only CPU per unit of work
  // says whether the code got slower.
  if (/cpu/.test(name)) return /per_/.test(name) ? 'lower' : undefined;
  if (/(^|_)(ms|s|mb|seconds)$|rss|lag|lost|429|errors?$|failed|non_2xx|unanswered/.test(name)) {
    return 'lower';
  }
  return undefined;
}

/**
 * RSS slopes (MiB per minute) sit around zero, where a percentage means nothing: one is flagged
 * when it rose above this.
 */
export const FLAG_SLOPE_MB_PER_MIN = 1;

export interface Change {
  readonly figure: string;
  readonly before: number;
  readonly after: number;
  /** (after - before) / before, null when before is 0. */
  readonly change: number | null;
  /** Worse by more than FLAG_DROP (or from zero to more, for a figure that should be low). */
  readonly flagged: boolean;
}

/** The figures both summaries have, in the later one's order. */
export function compare(before: unknown, after: unknown): Change[] {
  const earlier = figures(before);
  const changes: Change[] = [];
  for (const [figure, value] of figures(after)) {
    const was = earlier.get(figure);
    if (was === undefined) continue;
    const change = was === 0 ? null : (value - was) / Math.abs(was);
    const direction = better(figure);
    const worse = /slope/.test(figure)
      ? value > FLAG_SLOPE_MB_PER_MIN && value > was
      : direction === 'higher'
        ? change !== null && change < -FLAG_DROP
        : direction === 'lower'
          ? change === null
            ? value > 0
            : change > FLAG_DROP
          : false;
    changes.push({ figure, before: was, after: value, change, flagged: worse });
  }
  return changes;
}

/** A markdown table of `changes`, flagged ones marked; figures that did not move are left out. */
export function changeTable(changes: readonly Change[]): string {
  const moved = changes.filter((c) => c.before !== c.after);
  const lines = [
    `| figure | before | after | change | |`,
    `|---|---:|---:|---:|---|`,
    ...moved.map(
      (c) =>
        `| ${c.figure} | ${c.before} | ${c.after} | ${
          c.change === null ? 'from 0' : `${c.change > 0 ? '+' : ''}${(c.change * 100).toFixed(1)}%`
        } | ${c.flagged ? `worse by more than ${FLAG_DROP * 100}%` : ''} |`,
    ),
  ];
  const flagged = changes.filter((c) => c.flagged).length;
  return `${lines.join('\n')}\n\n${flagged} of ${changes.length} figures worse by more than ${
    FLAG_DROP * 100
  }% (${changes.length - moved.length} unchanged, not listed).`;
}

/** `node dist/bench/compare.js <before.json> <after.json>`: two summaries (or two benches' results). */
if (require.main === module) {
  const [beforeFile, afterFile] = process.argv.slice(2);
  if (!beforeFile || !afterFile) {
    process.stderr.write('usage: node dist/bench/compare.js <before.json> <after.json>\n');
    process.exit(2);
  }
  const read = (file: string) => {
    const parsed = JSON.parse(readFileSync(file, 'utf8')) as { results?: unknown };
    return parsed.results ?? parsed;
  };
  process.stdout.write(`${changeTable(compare(read(beforeFile), read(afterFile)))}\n`);
}
