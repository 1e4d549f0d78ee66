import { startWorker, workerWorld } from '../../support/refresh-worker';

describe('refresh worker: a Plaid call of 35 s', () => {
  it('stays in its consumer group while the call runs (no rebalance) and publishes the outcome', async () => {
    const world = await workerWorld({
      PLAID_SANDBOX_REFRESH_LATENCY: 'fixed:35000',
      PLAID_SANDBOX_TIME_SCALE: '1',
    });
    const worker = await startWorker(world);
    try {
      const items = await Promise.all(
        [1, 2, 3].map(() => world.sandbox.createItem({ webhook: null })),
      );
      for (const item of items) await worker.registerToken(item.item_id, item.access_token);
      const requests = await Promise.all(items.map((item) => world.request(item.item_id)));
      const outcomes = await Promise.all(
        requests.map((r) => world.outcomeOf(r.metadata.id, 60_000)),
      );

      expect(outcomes.map((o) => o.type)).toEqual([
        'RefreshAccepted',
        'RefreshAccepted',
        'RefreshAccepted',
      ]);
      expect(worker.consumer.groupJoins).toBe(1);
    } finally {
      await worker.close();
      await world.close();
    }
  });
});
