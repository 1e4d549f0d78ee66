/**
 * Item health's promises (apps/refresh-worker/src/health/item-health.ts), checked against the
 * log. Pure, so each rule is tested without a broker.
 *
 * 8. Health changes are the refresh worker's and come once per change: per Item, in the order
 *    of the facts behind them (changed_at, then log position), each ItemNeedsAttention /
 *    ItemHealthRestored starts from the health the one before it left (healthy before the
 *    first) and ends somewhere else. Copies of one event (same id) count once.
 * 8b. A refresh refused for the Item's health (RefreshFailed with item_health) was refused for a
 *    health the Item had been given before it: an ItemNeedsAttention of that Item, with that
 *    health, changed no later than the refusal (give or take a few seconds of clock skew).
 */
import { WORKER_SOURCE, type EventOfType, type ItemHealthState } from '@cashflow/contracts';
import type { Finding, LogRecord } from './invariants';

const MAX_EXAMPLES = 5;

type Change = EventOfType<'ItemNeedsAttention'> | EventOfType<'ItemHealthRestored'>;

/**
 * Rule 8b compares a webhook's received_at (the ingress's clock) with a refusal's failed_at (the
 * worker's): hosts' clocks may differ this much.
 */
const CLOCK_TOLERANCE_MS = 5_000;

const HEALTHY: ItemHealthState = { status: 'healthy', reason: null, consent_expires_at: null };

/** Equal healths, times compared as instants. */
function same(a: ItemHealthState, b: ItemHealthState): boolean {
  const time = (t: string | null) => (t === null ? null : Date.parse(t));
  return (
    a.status === b.status &&
    (a.reason ?? null) === (b.reason ?? null) &&
    time(a.consent_expires_at) === time(b.consent_expires_at)
  );
}

const describe = (h: ItemHealthState) =>
  h.status === 'healthy'
    ? 'healthy'
    : `${h.status} (${h.reason ?? h.consent_expires_at ?? 'no reason'})`;

const healthAfter = (change: Change): ItemHealthState =>
  change.type === 'ItemNeedsAttention' ? change.data.health : HEALTHY;

/** Rules 8 and 8b. */
export function checkItemHealth(records: readonly LogRecord[]): Finding {
  const examples: string[] = [];
  let violations = 0;
  const violation = (line: string) => {
    violations += 1;
    if (examples.length < MAX_EXAMPLES) examples.push(line);
  };
  const byItem = new Map<string, { change: Change; offset: bigint }[]>();
  const seen = new Set<string>();
  const refusals: EventOfType<'RefreshFailed'>[] = [];
  for (const r of records) {
    const e = r.event;
    if (!e) continue;
    if (e.type === 'RefreshFailed' && e.data.item_health && e.metadata.source === WORKER_SOURCE) {
      refusals.push(e);
    }
    if (e.type !== 'ItemNeedsAttention' && e.type !== 'ItemHealthRestored') continue;
    if (seen.has(e.metadata.id)) continue;
    seen.add(e.metadata.id);
    if (e.metadata.source !== WORKER_SOURCE) {
      violation(
        `${e.type} ${e.metadata.id} (${e.data.item_id}) is from ${e.metadata.source}, not the refresh worker`,
      );
      continue;
    }
    const list = byItem.get(e.data.item_id) ?? [];
    list.push({ change: e, offset: BigInt(r.offset) });
    byItem.set(e.data.item_id, list);
  }

  for (const [itemId, list] of byItem) {
    list.sort(
      (a, b) =>
        Date.parse(a.change.data.changed_at) - Date.parse(b.change.data.changed_at) ||
        (a.offset < b.offset ? -1 : a.offset > b.offset ? 1 : 0),
    );
    let health = HEALTHY;
    for (const { change } of list) {
      const after = healthAfter(change);
      if (!same(change.data.previous, health)) {
        violation(
          `${change.type} ${change.metadata.id} (${itemId}) starts from ${describe(change.data.previous)}, but the Item was ${describe(health)}`,
        );
      } else if (same(after, health)) {
        violation(
          `${change.type} ${change.metadata.id} (${itemId}) changes nothing: ${describe(health)} again`,
        );
      }
      health = after;
    }
  }

  for (const refusal of refusals) {
    const refusedFor = refusal.data.item_health!;
    const given = (byItem.get(refusal.data.item_id) ?? []).some(
      ({ change }) =>
        change.type === 'ItemNeedsAttention' &&
        same(change.data.health, refusedFor) &&
        Date.parse(change.data.changed_at) <=
          Date.parse(refusal.data.failed_at) + CLOCK_TOLERANCE_MS,
    );
    if (!given) {
      violation(
        `RefreshFailed ${refusal.metadata.id} (${refusal.data.item_id}) refused for ${describe(refusedFor)}, which no earlier ItemNeedsAttention gave the Item`,
      );
    }
  }

  return {
    name: 'item health changes once per change, and refusals rest on it',
    holds: violations === 0,
    counts: {
      'health changes': seen.size,
      items: byItem.size,
      'refused for health': refusals.length,
      violations,
    },
    examples,
  };
}
