import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';

/** The alert rules and dashboard that ship with the service (ops/). */
export const OPS_DIR = join(__dirname, '../../ops');

export interface AlertRule {
  readonly alert: string;
  readonly expr: string;
  readonly for?: string;
  readonly labels?: Record<string, string>;
  readonly annotations?: Record<string, string>;
}

/** Every alerting rule of ops/prometheus/rules.yaml, in file order. */
export function alertRules(): AlertRule[] {
  const file = parse(readFileSync(join(OPS_DIR, 'prometheus/rules.yaml'), 'utf8')) as {
    groups: { name: string; rules: (AlertRule | { record: string; expr: string })[] }[];
  };
  return file.groups.flatMap((g) => g.rules.filter((r): r is AlertRule => 'alert' in r));
}

export interface DashboardTarget {
  readonly panel: string;
  readonly expr: string;
}

interface Panel {
  readonly title: string;
  readonly targets?: { expr?: string }[];
  readonly panels?: Panel[];
}

/** Every query of the dashboard's panels (rows' nested panels included). */
export function dashboardTargets(): DashboardTarget[] {
  const dashboard = JSON.parse(
    readFileSync(join(OPS_DIR, 'grafana/cashflow-refresh.json'), 'utf8'),
  ) as { panels: Panel[] };
  const walk = (panels: readonly Panel[]): DashboardTarget[] =>
    panels.flatMap((p) => [
      ...(p.targets ?? []).flatMap((t) => (t.expr ? [{ panel: p.title, expr: t.expr }] : [])),
      ...walk(p.panels ?? []),
    ]);
  return walk(dashboard.panels);
}

/** PromQL words that stand where a metric name could but are not one. */
const KEYWORDS = new Set([
  'and',
  'or',
  'unless',
  'atan2',
  'bool',
  'offset',
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'inf',
  'nan',
]);

/**
 * The metric names a PromQL expression (or a Grafana query) reads. Not a parser: once string
 * literals, label matchers (`{...}`), label lists (`by (...)`, `on (...)`, ...), range and
 * subquery brackets and Grafana variables are taken out, PromQL leaves an identifier only where
 * it names a metric, calls a function or aggregation (followed by `(`), or is a keyword; numbers
 * and durations (`1e3`, `offset 1h`) start with a digit. The rules and dashboard use nothing
 * this misreads: no `__name__` matcher and no `@` modifier, which `metricNamesIn` refuses.
 */
export function metricNamesIn(expr: string): string[] {
  if (/__name__|@/.test(expr)) {
    throw new Error(`metricNamesIn cannot read this expression: ${expr}`);
  }
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\$\{?\w+\}?/g, ' ');
  const names = new Set<string>();
  for (const match of bare.matchAll(/(?<![\w.])[a-zA-Z_:][\w:]*/g)) {
    const word = match[0];
    const rest = bare.slice(match.index + word.length);
    if (/^\s*\(/.test(rest) || KEYWORDS.has(word.toLowerCase())) continue;
    names.add(word);
  }
  return [...names];
}
