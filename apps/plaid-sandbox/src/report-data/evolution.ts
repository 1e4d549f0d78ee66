import { hashSeed, randomId, seededRandom } from './random';
import {
  TEMPLATES,
  addDays,
  countSince,
  drawAmount,
  initialTransactions,
  newestFirst,
  pickTemplate,
  type HistorySpec,
  type SandboxTransaction,
} from './transactions';

/**
 * How an Item's transactions change between refreshes. An Item starts at generation 0
 * (`initialTransactions`); each completed refresh (or POST /sandbox/items/{id}/advance) moves it
 * to the next. Step g-1 -> g draws from a PRNG seeded with (item_id, seed, g) alone, so the
 * transactions of generation g are a pure function of the Item and g.
 *
 * 1. Every transaction pending at g-1 posts: it disappears, and a posted transaction with a new
 *    transaction_id names it in `pending_transaction_id` (Plaid's convention). Same account and
 *    merchant, authorized on the pending one's date, posted 0-2 days later (never after as_of);
 *    one in four posts with another amount, one in four under another name.
 * 2. Each account gets 1-3 new transactions dated in the NEW_DAYS days up to as_of; each is
 *    pending with probability 1/2.
 * 3. In each account, 1-2 transactions that were posted at g-1 and are dated in the last
 *    RECENT_DAYS days change their amount or their name; transaction_id and date stay.
 * 4. In each account, 1 other such transaction is removed altogether.
 * 5. The order stays Plaid's: newest date first, then transaction_id (`newestFirst`).
 *
 * Everything a step touches is dated in the last RECENT_DAYS days, the head of the newest-first
 * list; the older tail is carried over as it is.
 */
export const NEW_DAYS = 4;
export const RECENT_DAYS = 90;

/** The transactions of generation `generation`, replayed from generation 0. */
export function transactionsAt(spec: HistorySpec, generation: number): SandboxTransaction[] {
  let transactions = initialTransactions(spec);
  for (let g = 1; g <= generation; g++) transactions = nextGeneration(spec, transactions, g);
  return transactions;
}

/** Generation `generation` from generation `generation - 1` (`previous`, newest first). */
export function nextGeneration(
  spec: HistorySpec,
  previous: readonly SandboxTransaction[],
  generation: number,
): SandboxTransaction[] {
  const random = seededRandom(hashSeed(`${spec.item_id}:${spec.seed}:generation:${generation}`));
  const recentCount = countSince(previous, addDays(spec.as_of, -(RECENT_DAYS - 1)));
  const recent = previous.slice(0, recentCount);
  /** By transaction_id: its new version, or null when it is gone. */
  const replaced = new Map<string, SandboxTransaction | null>();
  const added: SandboxTransaction[] = [];

  // Rule 1.
  for (const t of recent) {
    if (!t.pending) continue;
    replaced.set(t.transaction_id, null);
    added.push(posted(spec, t, random));
  }

  for (const account of spec.accounts) {
    // Rule 2.
    const fresh = 1 + Math.floor(random() * 3);
    for (let n = 0; n < fresh; n++) added.push(newTransaction(spec, account.account_id, random));
    // Rules 3 and 4: the last pick is removed, the others change.
    const candidates = recent.filter((t) => t.account_id === account.account_id && !t.pending);
    const modified = 1 + Math.floor(random() * 2);
    const picks = pickDistinct(random, candidates.length, modified + 1);
    picks.forEach((index, n) => {
      const t = candidates[index]!;
      replaced.set(t.transaction_id, n < modified ? changed(t, random) : null);
    });
  }

  const head: SandboxTransaction[] = added;
  for (const t of recent) {
    const next = replaced.get(t.transaction_id);
    if (next === undefined) head.push(t);
    else if (next !== null) head.push(next);
  }
  head.sort(newestFirst); // rule 5
  for (let i = recentCount; i < previous.length; i++) head.push(previous[i]!);
  return head;
}

function posted(
  spec: HistorySpec,
  pending: SandboxTransaction,
  random: () => number,
): SandboxTransaction {
  const transaction_id = randomId(random);
  const postedOn = addDays(pending.date, Math.floor(random() * 3));
  const amount = random() < 0.25 ? otherAmount(pending.amount, random) : pending.amount;
  const name = random() < 0.25 ? otherName(pending, random) : pending.name;
  return {
    ...pending,
    transaction_id,
    date: postedOn > spec.as_of ? spec.as_of : postedOn,
    authorized_date: pending.date,
    amount,
    name,
    pending: false,
    pending_transaction_id: pending.transaction_id,
  };
}

function newTransaction(
  spec: HistorySpec,
  account_id: string,
  random: () => number,
): SandboxTransaction {
  const date = addDays(spec.as_of, -Math.floor(random() * NEW_DAYS));
  const pending = random() < 0.5;
  const template = pickTemplate(random);
  const amount = drawAmount(TEMPLATES[template]!, random);
  return {
    transaction_id: randomId(random),
    account_id,
    template,
    date,
    authorized_date: date,
    amount,
    name: TEMPLATES[template]!.name,
    pending,
    pending_transaction_id: null,
  };
}

function changed(t: SandboxTransaction, random: () => number): SandboxTransaction {
  return random() < 0.5
    ? { ...t, amount: otherAmount(t.amount, random) }
    : { ...t, name: otherName(t, random) };
}

/** 5-20% more or less, same sign, never the same amount. */
function otherAmount(amount: number, random: () => number): number {
  const factor = 1 + (0.05 + 0.15 * random()) * (random() < 0.5 ? -1 : 1);
  const next = Math.round(amount * factor * 100) / 100;
  if (next !== amount) return next;
  return Math.round((amount + (amount < 0 ? -0.01 : 0.01)) * 100) / 100;
}

/** The merchant's name with another reference, as institutions rewrite descriptions. */
function otherName(t: SandboxTransaction, random: () => number): string {
  const base = TEMPLATES[t.template]!.name;
  let reference = Math.floor(random() * 1_000_000);
  const name = () => `${base} REF ${String(reference).padStart(6, '0')}`;
  if (name() === t.name) reference = (reference + 1) % 1_000_000;
  return name();
}

/** Up to `wanted` distinct indices below `size`, drawn in order. */
export function pickDistinct(random: () => number, size: number, wanted: number): number[] {
  const picks: number[] = [];
  const taken = new Set<number>();
  for (let n = 0; n < Math.min(wanted, size); n++) {
    let index = Math.floor(random() * size);
    while (taken.has(index)) index = (index + 1) % size;
    taken.add(index);
    picks.push(index);
  }
  return picks;
}
