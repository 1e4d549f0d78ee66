import { partitioner } from '@cashflow/kafka';
import { randomUUID } from 'node:crypto';
import { Client } from 'pg';
import {
  startWorker,
  workerWorld,
  type Worker,
  type WorkerWorld,
} from '../../support/refresh-worker';
import { waitFor } from '../../support/wait-for';

/**
 * A request handed from one worker to another (a rebalance, a shutdown) is called at Plaid by
 * one of them only: the worker that lets it go starts no call for it, the one that takes it
 * over makes that call.
 */

/** The partition of the world's 3-partition topics that an Item's events land on. */
function partitionOf(itemId: string): number {
  const partitionMetadata = [0, 1, 2].map((partitionId) => ({
    partitionId,
    leader: 0,
    partitionErrorCode: 0,
    replicas: [0],
    isr: [0],
  }));
  return partitioner()({ topic: 't', partitionMetadata, message: { key: itemId, value: '' } });
}

/** Item ids that put two Items on each of the 3 partitions, so any rebalance moves some. */
function itemIdsOnEveryPartition(): string[] {
  const ids: string[] = [];
  const perPartition = [0, 0, 0];
  while (ids.length < 6) {
    const id = `item-handover-${randomUUID()}`;
    const p = partitionOf(id);
    if (perPartition[p]! < 2) {
      perPartition[p]! += 1;
      ids.push(id);
    }
  }
  return ids;
}

/**
 * One call per Item every `windowMs`: an Item's first request is answered at once; a second that
 * asks for more days waits in the worker for the Item's window.
 */
const paced = (windowMs: number, extra: Record<string, string> = {}) => ({
  PLAID_RATE_LIMIT_PER_ITEM: '1',
  PLAID_RATE_LIMIT_WINDOW_MS: String(windowMs),
  ...extra,
});

/** Items each with a request answered and a second one waiting for the Item's window in `worker`. */
async function waitingRequests(world: WorkerWorld, worker: Worker, itemIds: readonly string[]) {
  const items: string[] = [];
  for (const id of itemIds) items.push(await worker.registeredItem({ item_id: id }));
  for (const itemId of items) {
    const first = await world.request(itemId, { days_requested: 30 });
    expect((await world.outcomeOf(first.metadata.id)).type).toBe('RefreshAccepted');
  }
  const waiting = [];
  for (const itemId of items) waiting.push(await world.request(itemId, { days_requested: 90 }));
  await waitFor('the second requests waiting in the worker', () =>
    worker.consumer.inFlight === items.length ? true : undefined,
  );
  return { items, waiting };
}

describe('refresh worker: a rebalance', () => {
  it('leaves the call of a request whose partition moved to the worker that now owns it', async () => {
    const world = await workerWorld();
    const first = await startWorker(world, paced(10_000));
    let second: Worker | undefined;
    try {
      const { items, waiting } = await waitingRequests(world, first, itemIdsOnEveryPartition());
      // A second worker joins the group: some partitions move to it with their unanswered requests.
      second = await startWorker(world, paced(10_000));
      const outcomes = await Promise.all(
        waiting.map((r) => world.outcomeOf(r.metadata.id, 60_000)),
      );
      expect(outcomes.every((o) => o.type === 'RefreshAccepted')).toBe(true);
      // Whatever the first worker still held is done once its windows have opened.
      await waitFor(
        'the first worker idle',
        () => (first.consumer.inFlight === 0 ? true : undefined),
        60_000,
      );
      const calls = await Promise.all(items.map((itemId) => world.plaidCalls(itemId)));
      expect(calls).toEqual(items.map(() => 2));
      for (const r of waiting) expect(world.outcomesFor(r.metadata.id)).toHaveLength(1);
    } finally {
      await second?.close();
      await first.close();
      await world.close();
    }
  });
});

describe('refresh worker: a rebalance while calls are at Plaid', () => {
  it('does not call Plaid again for a moved request whose call is under way in the worker that let go', async () => {
    // Every refresh takes 6 s at the sandbox: the rebalance happens while all of them are out.
    const world = await workerWorld({
      PLAID_SANDBOX_REFRESH_LATENCY: 'fixed:6000',
      PLAID_SANDBOX_TIME_SCALE: '1',
    });
    const first = await startWorker(world);
    let second: Worker | undefined;
    try {
      const items: string[] = [];
      for (const id of itemIdsOnEveryPartition()) {
        items.push(await first.registeredItem({ item_id: id }));
      }
      const requests = [];
      for (const itemId of items) requests.push(await world.request(itemId));
      await waitFor('every call at Plaid', async () =>
        (await first.metric('plaid_refresh_calls_in_flight')) === items.length ? true : undefined,
      );
      second = await startWorker(world);
      const outcomes = await Promise.all(
        requests.map((r) => world.outcomeOf(r.metadata.id, 60_000)),
      );
      expect(outcomes.every((o) => o.type === 'RefreshAccepted')).toBe(true);
      const idle = (w: Worker) => w.consumer.inFlight === 0;
      await waitFor('both workers idle', () => (idle(first) && idle(second!) ? true : undefined));
      const calls = await Promise.all(items.map((itemId) => world.plaidCalls(itemId)));
      expect(calls).toEqual(items.map(() => 1));
      for (const r of requests) expect(world.outcomesFor(r.metadata.id)).toHaveLength(1);
    } finally {
      await second?.close();
      await first.close();
      await world.close();
    }
  });
});

describe('refresh worker: shutdown', () => {
  it('starts no Plaid call for a request still waiting for its window; the next worker makes it', async () => {
    const world = await workerWorld();
    try {
      const env = paced(3000, { SHUTDOWN_GRACE_MS: '8000' });
      const first = await startWorker(world, env);
      const { items, waiting } = await waitingRequests(world, first, [`item-${randomUUID()}`]);
      // The window opens 3 s from now, well within the grace period.
      await first.close();
      expect(await world.plaidCalls(items[0]!)).toBe(1);
      expect(world.outcomesFor(waiting[0]!.metadata.id)).toHaveLength(0);

      const next = await startWorker(world, env);
      try {
        const outcome = await world.outcomeOf(waiting[0]!.metadata.id);
        expect(outcome.type).toBe('RefreshAccepted');
        expect(await world.plaidCalls(items[0]!)).toBe(2);
      } finally {
        await next.close();
      }
    } finally {
      await world.close();
    }
  });

  it('stops fetching before it waits for a retry under way', async () => {
    const world = await workerWorld();
    const client = new Client({ connectionString: world.db.url });
    await client.connect();
    try {
      const env = {
        REFRESH_BACKOFF_BASE_MS: '600000',
        REFRESH_BACKOFF_MAX_MS: '3600000',
        SHUTDOWN_GRACE_MS: '4000',
      };
      const worker = await startWorker(world, env);
      const flaky = await world.sandbox.createItem({
        webhook: null,
        behaviour: { kind: 'transient', error_code: 'PLANNED_MAINTENANCE', failures: 1 },
      });
      await worker.registerToken(flaky.item_id, flaky.access_token);
      const healthy = await worker.registeredItem();
      await world.request(flaky.item_id);
      await waitFor('the refresh parked', async () => {
        const { rows } = await client.query('SELECT 1 FROM refresh_retries WHERE item_id = $1', [
          flaky.item_id,
        ]);
        return rows.length > 0 ? true : undefined;
      });
      // Plaid now never answers the Item: its retry, due at once, is claimed and hangs.
      await world.sandbox.admin('PUT', `/items/${flaky.item_id}/behaviour`, { kind: 'timeout' });
      await client.query('UPDATE refresh_retries SET due_at = now() WHERE item_id = $1', [
        flaky.item_id,
      ]);
      await waitFor('the retry claimed', async () => {
        const { rows } = await client.query(
          'SELECT 1 FROM refresh_retries WHERE item_id = $1 AND claimed_until IS NOT NULL',
          [flaky.item_id],
        );
        return rows.length > 0 ? true : undefined;
      });

      const closing = worker.close();
      // Published once the worker is stopping: the next worker must be the one to answer it.
      const late = await world.request(healthy);
      await closing;
      expect(await world.plaidCalls(healthy)).toBe(0);
      expect(world.outcomesFor(late.metadata.id)).toHaveLength(0);

      const next = await startWorker(world, env);
      try {
        expect((await world.outcomeOf(late.metadata.id)).type).toBe('RefreshAccepted');
      } finally {
        await next.close();
      }
    } finally {
      await client.end();
      await world.close();
    }
  });
});
