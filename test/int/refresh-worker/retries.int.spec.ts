import { Client } from 'pg';
import {
  startWorker,
  workerWorld,
  type Worker,
  type WorkerWorld,
} from '../../support/refresh-worker';
import { waitFor } from '../../support/wait-for';

/**
 * Parked retries (refresh_retries) run by the retry runner: each is called at Plaid once per
 * claim, and answers exactly the requests and days its call carried.
 */

/** An Item whose first refresh fails with PLANNED_MAINTENANCE (retried later) and then succeeds. */
const flakyItem = (worker: Worker) =>
  worker.registeredItem({
    behaviour: { kind: 'transient', error_code: 'PLANNED_MAINTENANCE', failures: 1 },
  });

async function database(world: WorkerWorld) {
  const client = new Client({ connectionString: world.db.url });
  await client.connect();
  return client;
}

/** Waits until every Item has a parked call; the backoff keeps them parked until the test says. */
async function parked(client: Client, itemIds: string[]) {
  await waitFor('the refreshes parked', async () => {
    const { rows } = await client.query(
      'SELECT item_id FROM refresh_retries WHERE item_id = ANY($1)',
      [itemIds],
    );
    return rows.length === itemIds.length ? true : undefined;
  });
}

const dueNow = (client: Client, itemIds: string[]) =>
  client.query('UPDATE refresh_retries SET due_at = now() WHERE item_id = ANY($1)', [itemIds]);

describe('refresh worker: parked retries behind the client rate limit', () => {
  let world: WorkerWorld;
  let worker: Worker;
  let client: Client;

  beforeAll(async () => {
    world = await workerWorld();
    // One call per 1.5 s for the whole client; a huge backoff keeps failed calls parked.
    worker = await startWorker(world, {
      PLAID_RATE_LIMIT_PER_CLIENT: '1',
      PLAID_RATE_LIMIT_WINDOW_MS: '1500',
      REFRESH_BACKOFF_BASE_MS: '600000',
      REFRESH_BACKOFF_MAX_MS: '3600000',
    });
    client = await database(world);
  });
  afterAll(async () => {
    await client.end();
    await worker.close();
    await world.close();
  });

  it('claims a parked call only with a turn of the client rate limit in hand, and calls Plaid once per retry', async () => {
    const items: string[] = [];
    for (let i = 0; i < 4; i++) items.push(await flakyItem(worker));
    const requests = [];
    for (const itemId of items) requests.push(await world.request(itemId));
    await parked(client, items);
    // What ops see of them (an alert watches it grow): read from PostgreSQL at each scrape.
    await waitFor('the four parked calls on /metrics', async () =>
      (await worker.metric('refresh_retries_waiting')) === 4 ? true : undefined,
    );

    // A claim held while its call waits behind others outlives its lease under a backlog, and is
    // then claimed and called again. Here 4 retries are due at once and one call fits in 1.5 s.
    let mostClaimed = 0;
    let watching = true;
    const watch = (async () => {
      while (watching) {
        const { rows } = await client.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM refresh_retries
            WHERE item_id = ANY($1) AND claimed_until IS NOT NULL`,
          [items],
        );
        mostClaimed = Math.max(mostClaimed, rows[0]!.n);
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    await dueNow(client, items);
    // Eight calls one per 1.5 s take 12 s; the time-outs only guard against a hang, with room for
    // a loaded machine.
    const outcomes = await Promise.all(
      requests.map((r) => world.outcomeOf(r.metadata.id, 120_000)),
    );
    watching = false;
    await watch;

    expect(outcomes.map((o) => [o.type, o.data.attempts])).toEqual(
      Array(4).fill(['RefreshAccepted', 2]),
    );
    expect(mostClaimed).toBeLessThanOrEqual(1);
    const calls = await Promise.all(items.map((itemId) => world.plaidCalls(itemId)));
    expect(calls).toEqual([2, 2, 2, 2]);
    expect(await worker.metric('refresh_retries_waiting')).toBe(0);
  }, 180_000);
});

describe('refresh worker: a request joining a parked call while it is at Plaid', () => {
  let world: WorkerWorld;
  let worker: Worker;
  let client: Client;

  beforeAll(async () => {
    world = await workerWorld({ PLAID_SANDBOX_TIME_SCALE: '1' });
    worker = await startWorker(world, {
      REFRESH_BACKOFF_BASE_MS: '600000',
      REFRESH_BACKOFF_MAX_MS: '3600000',
    });
    client = await database(world);
  });
  afterAll(async () => {
    await client.end();
    await worker.close();
    await world.close();
  });

  it('is answered by a call of its own, with its own days; the parked call answers only what it carried', async () => {
    const itemId = await flakyItem(worker);
    const first = await world.request(itemId, { days_requested: 30 });
    await parked(client, [itemId]);

    // The retry will be at Plaid for 4 s: long enough for a request to join the parked row.
    await world.sandbox.admin('PUT', '/faults', { refresh_latency: 'fixed:4000' });
    await dueNow(client, [itemId]);
    await waitFor('the retry claimed', async () => {
      const { rows } = await client.query(
        'SELECT 1 FROM refresh_retries WHERE item_id = $1 AND claimed_until IS NOT NULL',
        [itemId],
      );
      return rows.length > 0 ? true : undefined;
    });
    const later = await world.request(itemId, { days_requested: 400 });
    await waitFor('the later request joined the parked call', async () => {
      const { rows } = await client.query<{ followers: { requestId: string }[] }>(
        'SELECT followers FROM refresh_retries WHERE item_id = $1',
        [itemId],
      );
      const followers = rows[0]?.followers ?? [];
      return followers.some((m) => m.requestId === later.metadata.id) ? true : undefined;
    });
    await world.sandbox.admin('PUT', '/faults', { refresh_latency: 'fixed:0' });

    const a = await world.outcomeOf(first.metadata.id, 60_000);
    const b = await world.outcomeOf(later.metadata.id, 60_000);
    expect(a.type).toBe('RefreshAccepted');
    expect(a.data).toMatchObject({ days_requested: 30, attempts: 2 });
    expect(b.type).toBe('RefreshAccepted');
    expect(b.data).toMatchObject({ days_requested: 400 });
    expect(b.data).not.toHaveProperty('coalesced_into');
    expect(await world.plaidCalls(itemId)).toBe(3);
  });
});
