import { createDataSource, runMigrations } from '@cashflow/persistence';
import type { DataSource } from 'typeorm';
import { RefreshStore } from '../../../apps/refresh-worker/src/refresh/refresh-store';
import { createTestDatabase, type TestDatabase } from '../../support/infra';
import { eventsFor } from '../../support/refresh-histories';

/** The claims of parked calls in PostgreSQL: only the claim's holder changes its call. */
describe('refresh worker store: claims of parked calls', () => {
  let db: TestDatabase;
  let dataSource: DataSource;
  let store: RefreshStore;

  beforeAll(async () => {
    db = await createTestDatabase();
    await runMigrations({ url: db.url, applicationName: 'test' });
    dataSource = await createDataSource({ url: db.url, applicationName: 'test' }).initialize();
    store = new RefreshStore(dataSource);
  });
  afterAll(async () => {
    await dataSource.destroy();
    await db.drop();
  });

  const error = { source: 'worker' as const, error_code: 'PLAID_TIMEOUT', error_message: 'slow' };

  /** A call parked for a retry, due already (as the worker leaves one that Plaid asked to retry). */
  async function parkedCall(itemId: string) {
    const { claim } = await store.startCall(
      {
        itemId,
        members: [{ requestId: `${itemId}-r1`, days: 30 }],
        days: 30,
        attempts: 0,
        lastError: null,
      },
      60_000,
    );
    expect(
      await store.reschedule(
        claim!,
        { attempts: 1, lastError: error, dueAt: new Date(Date.now() - 1000) },
        new Set(),
      ),
    ).toBe(true);
  }

  /** Claims the Item's call: its lease runs out at once unless `leaseMs` says otherwise. */
  async function claim(itemId: string, leaseMs = 0) {
    const claims = await store.claimDue(100, leaseMs);
    const found = claims.find((c) => c.itemId === itemId);
    if (!found) throw new Error(`no claim of ${itemId}`);
    return found;
  }

  it('lets no one but the latest claim renew, finish or reschedule the call', async () => {
    await parkedCall('item-taken-over');
    const first = await claim('item-taken-over');
    // The first claim's lease ran out: another worker claims the call.
    await new Promise((r) => setTimeout(r, 5));
    const second = await claim('item-taken-over', 60_000);
    expect(second.token).not.toBe(first.token);

    const outcome = eventsFor('item-taken-over').accepted(
      'item-taken-over-r1',
      '2026-11-24T10:00:01.000Z',
    );
    expect(await store.renew(first, 60_000)).toBe(false);
    expect(await store.finish(first, [outcome], new Date())).toBeUndefined();
    expect(
      await store.reschedule(
        first,
        { attempts: 2, lastError: error, dueAt: new Date() },
        new Set(),
      ),
    ).toBe(false);
    expect((await store.recorded(['item-taken-over-r1'])).size).toBe(0);

    expect(await store.renew(second, 60_000)).toBe(true);
    expect(await store.finish(second, [outcome], new Date())).toEqual([outcome]);
    expect(
      (
        await store.known({
          id: 'item-taken-over-r1',
          source: 'urn:test',
          itemId: 'item-taken-over',
        })
      ).parked,
    ).toBeUndefined();
  });

  it('claims no more than asked', async () => {
    for (const id of ['item-a', 'item-b', 'item-c']) await parkedCall(id);
    expect(await store.claimDue(2, 60_000)).toHaveLength(2);
    expect(await store.claimDue(0, 60_000)).toHaveLength(0);
  });

  it('keeps requests that joined during the call parked as a call of their own', async () => {
    await parkedCall('item-joined');
    const held = await claim('item-joined', 60_000);
    expect(await store.join('item-joined', [{ requestId: 'item-joined-r2', days: 400 }])).toBe(
      true,
    );
    const outcome = eventsFor('item-joined').accepted('item-joined-r1', '2026-11-24T10:00:01.000Z');
    const due = new Date(Date.now() + 30_000);
    expect(await store.finish(held, [outcome], due)).toEqual([outcome]);

    const left = (
      await store.known({ id: 'item-joined-r2', source: 'urn:test', itemId: 'item-joined' })
    ).parked;
    expect(left).toMatchObject({
      members: [{ requestId: 'item-joined-r2', days: 400 }],
      days: 400,
      attempts: 0,
      lastError: null,
    });
    expect(left!.dueAt.getTime()).toBe(due.getTime());
  });
});
