import type { SandboxItem } from '../items/item';
import { nextGeneration, transactionsAt } from './evolution';
import { addDays, countSince, type SandboxTransaction } from './transactions';

/** An Item's transactions at one generation, newest first, with the views paging needs. */
export class TransactionHistory {
  /** Per set of accounts asked for, computed on first use. */
  private readonly subsets = new Map<string, readonly SandboxTransaction[]>();

  constructor(
    readonly generation: number,
    readonly all: readonly SandboxTransaction[],
    private readonly accountIds: readonly string[],
  ) {}

  /** Only the transactions of `accountIds` (every account's when undefined), newest first. */
  of(accountIds?: readonly string[]): readonly SandboxTransaction[] {
    if (!accountIds) return this.all;
    const wanted = new Set(accountIds);
    if (this.accountIds.every((id) => wanted.has(id))) return this.all;
    const key = [...wanted].sort().join('\n');
    let subset = this.subsets.get(key);
    if (!subset) {
      subset = this.all.filter((t) => wanted.has(t.account_id));
      this.subsets.set(key, subset);
    }
    return subset;
  }
}

/** The first day of a `daysRequested` window ending on as_of; '' (no limit) when undefined. */
export function windowStart(item: SandboxItem, daysRequested: number | undefined): string {
  return daysRequested === undefined ? '' : addDays(item.as_of, -(daysRequested - 1));
}

/**
 * The Item's transactions now within `daysRequested` days of as_of (all when undefined): the
 * first `count` of `list`, newest first. Not copied, so a page costs its own size.
 */
export function transactionWindow(
  item: SandboxItem,
  daysRequested: number | undefined,
  accountIds?: readonly string[],
): { readonly list: readonly SandboxTransaction[]; readonly count: number } {
  const list = historyOf(item).of(accountIds);
  return { list, count: countSince(list, windowStart(item, daysRequested)) };
}

// Only an Item's current generation is kept; the next one is stepped to from it.
const cache = new WeakMap<SandboxItem, TransactionHistory>();

/** The Item's transactions at its current generation. */
export function historyOf(item: SandboxItem): TransactionHistory {
  const cached = cache.get(item);
  if (cached?.generation === item.generation) return cached;
  let all: readonly SandboxTransaction[];
  if (cached && cached.generation < item.generation) {
    all = cached.all;
    for (let g = cached.generation + 1; g <= item.generation; g++)
      all = nextGeneration(item, all, g);
  } else {
    all = transactionsAt(item, item.generation);
  }
  const history = new TransactionHistory(
    item.generation,
    all,
    item.accounts.map((a) => a.account_id),
  );
  cache.set(item, history);
  return history;
}
