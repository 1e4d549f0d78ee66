/**
 * Item health's promises (apps/refresh-worker/src/health/item-health.ts), checked against the
 * log. Pure, so each rule is tested without a broker.
 *
 * 8. Health changes are the refresh worker's, numbered and once per change: per Item, the
 *    ItemNeedsAttention / ItemHealthRestored events (copies of one event counted once) carry
 *    sequence 1, 2, ... with none missing and none twice, and each starts from the health the
 *    one before it left (healthy before the first) and ends somewhere else.
 * 8b. A refresh refused for the Item's health (RefreshFailed with item_health) rests on the
 *    change it names: that ItemNeedsAttention gave the Item that very health, and the Item's next
 *    change, if any, was decided after the refusal (give or take a few seconds of clock skew).
 */
import { WORKER_SOURCE, type EventOfType, type ItemHealthState } from '@cashflow/contracts';
import type { Finding, LogRecord } from './invariants';

const MAX_EXAMPLES = 5;

/** Hosts' clocks (the worker deciding a change, the one refusing) may differ this much. */
const CLOCK_TOLERANCE_MS = 5_000;

type Change = EventOfType<'ItemNeedsAttention'> | EventOfType<'ItemHealthRestored'>;

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
  /** Per Item, its changes by sequence. */
  const byItem = new Map<string, Map<number, Change>>();
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
    const label = `${e.type} ${e.metadata.id} (${e.data.item_id}, change ${e.data.sequence})`;
    if (e.metadata.source !== WORKER_SOURCE) {
      violation(`${label} is from ${e.metadata.source}, not the refresh worker`);
      continue;
    }
    const changes = byItem.get(e.data.item_id) ?? new Map<number, Change>();
    if (changes.has(e.data.sequence)) {
      violation(`${label}: the Item's change ${e.data.sequence} was published twice, differently`);
      continue;
    }
    changes.set(e.data.sequence, e);
    byItem.set(e.data.item_id, changes);
  }

  for (const [itemId, changes] of byItem) {
    const last = Math.max(...changes.keys());
    // The health the change before left; null when that change is missing.
    let health: ItemHealthState | null = HEALTHY;
    for (let n = 1; n <= last; n++) {
      const change = changes.get(n);
      if (!change) {
        violation(`${itemId}: health change ${n} of ${last} is missing`);
        health = null;
        continue;
      }
      const label = `${change.type} ${change.metadata.id} (${itemId}, change ${n})`;
      const after = healthAfter(change);
      if (health && !same(change.data.previous, health)) {
        const before =
          n === 1 ? 'the Item was healthy' : `change ${n - 1} left ${describe(health)}`;
        violation(`${label} starts from ${describe(change.data.previous)}, but ${before}`);
      } else if (same(after, change.data.previous)) {
        violation(`${label} changes nothing: ${describe(after)} again`);
      }
      health = after;
    }
  }

  for (const refusal of refusals) {
    const refusedFor = refusal.data.item_health!;
    const label = `RefreshFailed ${refusal.metadata.id} (${refusal.data.item_id})`;
    const changes = byItem.get(refusal.data.item_id);
    const basis = changes?.get(refusedFor.sequence);
    if (!basis || basis.type !== 'ItemNeedsAttention' || !same(basis.data.health, refusedFor)) {
      violation(
        `${label} refused for ${describe(refusedFor)} as of change ${refusedFor.sequence}, which no ItemNeedsAttention gave the Item`,
      );
      continue;
    }
    const next = changes!.get(refusedFor.sequence + 1);
    if (
      next &&
      Date.parse(next.data.decided_at) + CLOCK_TOLERANCE_MS < Date.parse(refusal.data.failed_at)
    ) {
      violation(
        `${label} at ${refusal.data.failed_at} refused for change ${refusedFor.sequence}, but change ${refusedFor.sequence + 1} (${describe(healthAfter(next))}) was decided at ${next.data.decided_at}`,
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
