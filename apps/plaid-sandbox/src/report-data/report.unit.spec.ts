import { ItemStore } from '../items/item-store';
import { advanceItem } from '../items/item';
import { historyOf } from './item-history';
import { transactionsAt } from './evolution';
import { decodeCursor, transactionsPage } from './report';
import { addDays, toPlaidTransaction } from './transactions';

const store = new ItemStore(null, () => new Date('2026-03-10T12:00:00Z'));

/** What a page must hold, by filtering the whole list: the rule the fast path must keep. */
function naivePage(
  item: ReturnType<ItemStore['create']>,
  days: number | undefined,
  accountIds: string[] | undefined,
  offset: number,
  count: number,
) {
  const from = days === undefined ? '' : addDays(item.as_of, -(days - 1));
  const matching = transactionsAt(item, item.generation).filter(
    (t) => t.date >= from && (!accountIds || accountIds.includes(t.account_id)),
  );
  return {
    transactions: matching.slice(offset, offset + count).map(toPlaidTransaction),
    total: matching.length,
  };
}

describe('transactionsPage', () => {
  const accounts = [
    { name: 'Checking', type: 'depository' as const },
    { name: 'Savings', type: 'depository' as const },
    { name: 'Card', type: 'credit' as const },
  ];
  const pick = (ids: string[], which: number[] | undefined) => which?.map((i) => ids[i]!);

  it.each([
    [undefined, undefined],
    [1, undefined],
    [30, undefined],
    [365, [0]],
    [730, [0, 2]],
    [90, [2, 1, 0]],
    [45, [1, 2]],
  ])('serves what filtering would, days %s accounts %j, in every generation', (days, which) => {
    const item = store.create({ accounts, transactions_per_account: 200 });
    const ids = pick(
      item.accounts.map((x) => x.account_id),
      which,
    );
    for (const generation of [0, 1, 4]) {
      advanceItem(item, generation - item.generation, new Date());
      for (const [offset, count] of [
        [0, 7],
        [7, 100],
        [150, 500],
        [10_000, 5],
      ] as const) {
        const page = transactionsPage(item, {
          daysRequested: days,
          accountIds: ids,
          offset,
          count,
        });
        const expected = naivePage(item, days, ids, offset, count);
        expect(page.transactions).toEqual(expected.transactions);
        expect(page.total_transactions).toBe(expected.total);
        const end = decodeCursor(page.next_cursor)!;
        expect(end).toBe(Math.min(offset + count, expected.total));
        expect(page.has_more).toBe(end < expected.total);
      }
    }
  });

  it('keeps only the current generation of an Item, stepping to the next from it', () => {
    const other = store.create({ item_id: 'item-steps', transactions_per_account: 50 });
    const first = historyOf(other);
    expect(historyOf(other)).toBe(first);
    advanceItem(other, 1, new Date());
    const second = historyOf(other);
    expect(second.generation).toBe(1);
    expect(second.all).toEqual(transactionsAt(other, 1));
    advanceItem(other, 3, new Date());
    expect(historyOf(other).all).toEqual(transactionsAt(other, 4));
  });
});
