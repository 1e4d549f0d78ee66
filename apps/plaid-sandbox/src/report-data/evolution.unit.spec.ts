import { NEW_DAYS, RECENT_DAYS, nextGeneration, pickDistinct, transactionsAt } from './evolution';
import {
  addDays,
  initialTransactions,
  newestFirst,
  type HistorySpec,
  type SandboxTransaction,
} from './transactions';

const spec: HistorySpec = {
  item_id: 'item-evolving',
  seed: 3,
  accounts: [{ account_id: 'acc-checking' }, { account_id: 'acc-card' }],
  transactions_per_account: 300,
  as_of: '2026-03-10',
};

const byId = (list: readonly SandboxTransaction[]) =>
  new Map(list.map((t) => [t.transaction_id, t]));

/** What step g-1 -> g did, seen from outside as a fetcher would. */
function diff(before: readonly SandboxTransaction[], after: readonly SandboxTransaction[]) {
  const old = byId(before);
  const now = byId(after);
  return {
    added: after.filter((t) => !old.has(t.transaction_id)),
    removed: before.filter((t) => !now.has(t.transaction_id)),
    modified: after.filter((t) => {
      const was = old.get(t.transaction_id);
      return was !== undefined && JSON.stringify(was) !== JSON.stringify(t);
    }),
  };
}

describe('transaction evolution', () => {
  it('is generation 0 at generation 0, and a pure function of the Item and the generation', () => {
    expect(transactionsAt(spec, 0)).toEqual(initialTransactions(spec));
    expect(transactionsAt(spec, 5)).toEqual(transactionsAt({ ...spec }, 5));
    expect(nextGeneration(spec, transactionsAt(spec, 4), 5)).toEqual(transactionsAt(spec, 5));
    const otherSeed = { ...spec, seed: 4 };
    const ours = diff(transactionsAt(spec, 0), transactionsAt(spec, 1));
    const theirs = diff(transactionsAt(otherSeed, 0), transactionsAt(otherSeed, 1));
    expect(theirs.added.map((t) => t.transaction_id)).not.toEqual(
      ours.added.map((t) => t.transaction_id),
    );
  });

  it('does not change the generation it steps from', () => {
    const before = transactionsAt(spec, 1);
    const copy = JSON.parse(JSON.stringify(before)) as SandboxTransaction[];
    nextGeneration(spec, before, 2);
    expect(before).toEqual(copy);
  });

  it('keeps Plaid order: newest date first, then transaction_id, in every generation', () => {
    let list = transactionsAt(spec, 0);
    for (let g = 1; g <= 8; g++) {
      list = nextGeneration(spec, list, g);
      expect([...list].sort(newestFirst)).toEqual(list);
      expect(list.every((t) => t.date <= spec.as_of)).toBe(true);
    }
  });

  it('posts every pending transaction as a new posted one that names it (Plaid convention)', () => {
    let list = transactionsAt(spec, 0);
    let posts = 0;
    for (let g = 1; g <= 8; g++) {
      const next = nextGeneration(spec, list, g);
      const now = byId(next);
      for (const pending of list.filter((t) => t.pending)) {
        expect(now.has(pending.transaction_id)).toBe(false);
        const replacements = next.filter(
          (t) => t.pending_transaction_id === pending.transaction_id,
        );
        expect(replacements).toHaveLength(1);
        const [done] = replacements as [SandboxTransaction];
        expect(done).toMatchObject({
          pending: false,
          account_id: pending.account_id,
          template: pending.template,
          authorized_date: pending.date,
        });
        expect(done.transaction_id).not.toBe(pending.transaction_id);
        expect(done.date >= pending.date && done.date <= spec.as_of).toBe(true);
        posts += 1;
      }
      // Pending ones name no pending transaction: the field is a posted one's link.
      expect(next.filter((t) => t.pending && t.pending_transaction_id !== null)).toEqual([]);
      list = next;
    }
    expect(posts).toBeGreaterThan(5);
  });

  it('adds 1-3 transactions per account in the last days, some pending', () => {
    let list = transactionsAt(spec, 0);
    let pending = 0;
    for (let g = 1; g <= 6; g++) {
      const next = nextGeneration(spec, list, g);
      const fresh = diff(list, next).added.filter((t) => t.pending_transaction_id === null);
      for (const account of spec.accounts) {
        const mine = fresh.filter((t) => t.account_id === account.account_id);
        expect(mine.length).toBeGreaterThanOrEqual(1);
        expect(mine.length).toBeLessThanOrEqual(3);
      }
      const earliest = addDays(spec.as_of, -(NEW_DAYS - 1));
      expect(fresh.every((t) => t.date >= earliest && t.date <= spec.as_of)).toBe(true);
      pending += fresh.filter((t) => t.pending).length;
      list = next;
    }
    expect(pending).toBeGreaterThan(0);
  });

  it('modifies 1-2 recent posted transactions per account, keeping their id, and removes 1', () => {
    const before = transactionsAt(spec, 2);
    const after = nextGeneration(spec, before, 3);
    const { modified, removed } = diff(before, after);
    const old = byId(before);
    const recentFrom = addDays(spec.as_of, -(RECENT_DAYS - 1));
    for (const account of spec.accounts) {
      const changed = modified.filter((t) => t.account_id === account.account_id);
      expect(changed.length).toBeGreaterThanOrEqual(1);
      expect(changed.length).toBeLessThanOrEqual(2);
      const gone = removed.filter((t) => t.account_id === account.account_id && !t.pending);
      expect(gone).toHaveLength(1);
      expect(gone[0]!.date >= recentFrom).toBe(true);
    }
    for (const t of modified) {
      const was = old.get(t.transaction_id)!;
      expect(was.pending).toBe(false);
      expect(t.date).toBe(was.date);
      const amountChanged = t.amount !== was.amount;
      const nameChanged = t.name !== was.name;
      expect(amountChanged !== nameChanged).toBe(true);
      expect({ ...t, amount: was.amount, name: was.name }).toEqual(was);
      if (amountChanged) expect(Math.sign(t.amount)).toBe(Math.sign(was.amount));
    }
  });

  it('changes only a small share of a big Item in one step', () => {
    const big = { ...spec, transactions_per_account: 1000 };
    const before = transactionsAt(big, 1);
    const after = nextGeneration(big, before, 2);
    const { added, removed, modified } = diff(before, after);
    const touched = added.length + removed.length + modified.length;
    expect(touched).toBeGreaterThan(0);
    expect(touched / before.length).toBeLessThan(0.01);
    // The older history is carried over untouched, object for object.
    const cut = addDays(big.as_of, -RECENT_DAYS);
    const tail = (list: readonly SandboxTransaction[]) => list.filter((t) => t.date <= cut);
    expect(tail(after)).toEqual(tail(before));
  });

  it('evolves an Item that started empty', () => {
    const empty = { ...spec, transactions_per_account: 0 };
    expect(transactionsAt(empty, 0)).toEqual([]);
    const later = transactionsAt(empty, 3);
    expect(later.length).toBeGreaterThan(0);
    expect([...later].sort(newestFirst)).toEqual(later);
  });
});

describe('pickDistinct', () => {
  it('draws distinct indices, no more than there are', () => {
    expect(pickDistinct(() => 0, 5, 3)).toEqual([0, 1, 2]);
    expect(pickDistinct(() => 0.99, 2, 5)).toEqual([1, 0]);
    expect(pickDistinct(() => 0.5, 0, 2)).toEqual([]);
  });
});
