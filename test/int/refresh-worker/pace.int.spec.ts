import type { RefreshAccepted } from '@cashflow/contracts';
import { randomUUID } from 'node:crypto';
import {
  startWorker,
  type Outcome,
  workerWorld,
  type Worker,
  type WorkerWorld,
} from '../../support/refresh-worker';
import { waitFor } from '../../support/wait-for';

/** The outcome's data, after checking it is an acceptance (fields compared below exist). */
function accepted(outcome: Outcome): RefreshAccepted['data'] {
  expect(outcome.type).toBe('RefreshAccepted');
  return outcome.data as RefreshAccepted['data'];
}

/**
 * The coalescing tests' per-Item limit: 2 calls per 6 s, so calls are spaced 3 s apart. A request
 * the tests send once an outcome has arrived must reach the worker within the spacing to share
 * the call: 2.5 s after the 500 ms call ends leaves room for a loaded machine.
 */
const WINDOW_MS = 6000;
const SPACING_MS = WINDOW_MS / 2;

describe('refresh worker: coalescing', () => {
  let world: WorkerWorld;
  let worker: Worker;

  beforeAll(async () => {
    // Every refresh takes 500 ms at the sandbox, so later requests arrive while one is pending.
    world = await workerWorld({
      PLAID_SANDBOX_REFRESH_LATENCY: 'fixed:500',
      PLAID_SANDBOX_TIME_SCALE: '1',
    });
    worker = await startWorker(world, {
      PLAID_RATE_LIMIT_PER_ITEM: '2',
      PLAID_RATE_LIMIT_WINDOW_MS: String(WINDOW_MS),
    });
  });
  afterAll(async () => {
    await worker.close();
    await world.close();
  });

  it('answers a burst of ten requests for one Item with one Plaid call and ten outcomes', async () => {
    const itemId = await worker.registeredItem();
    // One send: a burst reaches Kafka at once. Sent one by one, the ten could reach it over more
    // than the Item's spacing on a loaded machine, and the last ones then rightly make a call.
    const requests = await world.burst(itemId, 10, { days_requested: 90 });
    const outcomes = await Promise.all(requests.map((r) => world.outcomeOf(r.metadata.id)));

    expect(await world.plaidCalls(itemId)).toBe(1);
    expect(outcomes.every((o) => o.type === 'RefreshAccepted')).toBe(true);
    const leader = requests[0]!.metadata.id;
    expect(outcomes[0]!.data).not.toHaveProperty('coalesced_into');
    expect(outcomes.slice(1).map((o) => o.data.coalesced_into)).toEqual(Array(9).fill(leader));
    expect(new Set(outcomes.map((o) => o.metadata.id)).size).toBe(10);
    expect(
      new Set(outcomes.map((o) => o.type === 'RefreshAccepted' && o.data.plaid_request_id)).size,
    ).toBe(1);
  });

  it('makes a second call, after the first, for a request that asks for more days', async () => {
    const itemId = await worker.registeredItem();
    const short = await world.request(itemId, { days_requested: 30 });
    const long = await world.request(itemId, { days_requested: 180 });
    const middle = await world.request(itemId, { days_requested: 60 });
    const [a, b, c] = await Promise.all(
      [short, long, middle].map((r) => world.outcomeOf(r.metadata.id)),
    );

    expect(await world.plaidCalls(itemId)).toBe(2);
    expect(a!.data).toMatchObject({ days_requested: 30 });
    expect(b!.data).toMatchObject({ days_requested: 180 });
    expect(b!.data).not.toHaveProperty('coalesced_into');
    expect(c!.data).toMatchObject({ days_requested: 180, coalesced_into: long.metadata.id });
  });

  it('answers a request arriving soon after a call from that call, and calls again later', async () => {
    // Limit 2 per 6 s: calls of one Item are spaced 3 s apart.
    const itemId = await worker.registeredItem();
    const first = await world.request(itemId);
    const answered = accepted(await world.outcomeOf(first.metadata.id));
    const soon = await world.request(itemId);
    const outcome = accepted(await world.outcomeOf(soon.metadata.id));
    expect(await world.plaidCalls(itemId)).toBe(1);
    expect(outcome.coalesced_into).toBe(first.metadata.id);
    expect(outcome.plaid_request_id).toBe(answered.plaid_request_id);
    // As of when Plaid answered that call: its report may already be in, and reports are paired
    // with acceptances by time.
    expect(outcome.accepted_at).toBe(answered.accepted_at);

    await new Promise((r) => setTimeout(r, SPACING_MS + 100));
    const later = await world.request(itemId);
    expect((await world.outcomeOf(later.metadata.id)).data).not.toHaveProperty('coalesced_into');
    expect(await world.plaidCalls(itemId)).toBe(2);
  });

  it('waits for the window rather than coalescing a request that asks for more days', async () => {
    const itemId = await worker.registeredItem();
    const first = accepted(
      await world.outcomeOf((await world.request(itemId, { days_requested: 10 })).metadata.id),
    );
    await new Promise((r) => setTimeout(r, SPACING_MS + 100));
    await world.outcomeOf((await world.request(itemId, { days_requested: 10 })).metadata.id);
    // Two calls within the last 6 s: the window is full until the first call leaves it, and 400
    // days is more than either asked for, so neither answers it.
    const wider = await world.request(itemId, { days_requested: 400 });
    const outcome = accepted(await world.outcomeOf(wider.metadata.id));
    expect(outcome.days_requested).toBe(400);
    expect(outcome).not.toHaveProperty('coalesced_into');
    expect(await world.plaidCalls(itemId)).toBe(3);
    // Every call takes the sandbox's fixed 500 ms, so answers are as far apart as the calls.
    expect(Date.parse(outcome.accepted_at) - Date.parse(first.accepted_at)).toBeGreaterThanOrEqual(
      WINDOW_MS - 50,
    );
  });

  it('answers a back-dated request with a call of its own, not one made before it was sent', async () => {
    const itemId = await worker.registeredItem();
    const first = await world.request(itemId);
    accepted(await world.outcomeOf(first.metadata.id));
    await new Promise((r) => setTimeout(r, SPACING_MS + 100));
    // Its ce_time claims an hour ago (a skewed clock, or a request replayed from an old file).
    const backdated = await world.request(itemId, {}, randomUUID(), {
      time: new Date(Date.now() - 3_600_000).toISOString(),
    });
    const outcome = accepted(await world.outcomeOf(backdated.metadata.id));
    expect(outcome).not.toHaveProperty('coalesced_into');
    expect(await world.plaidCalls(itemId)).toBe(2);
  });
});

describe('refresh worker: client-side rate limit', () => {
  let world: WorkerWorld;
  let worker: Worker;

  beforeAll(async () => {
    world = await workerWorld({
      PLAID_SANDBOX_RATE_LIMIT_PER_CLIENT: '4',
      PLAID_SANDBOX_RATE_LIMIT_WINDOW_MS: '1500',
    });
    // A window a little longer than Plaid's absorbs the time between counting a call and its arrival.
    worker = await startWorker(world, {
      PLAID_RATE_LIMIT_PER_CLIENT: '4',
      PLAID_RATE_LIMIT_WINDOW_MS: '1600',
    });
  });
  afterAll(async () => {
    await worker.close();
    await world.close();
  });

  it('spaces its calls so Plaid never answers 429', async () => {
    const items = [];
    for (let i = 0; i < 10; i++) items.push(await worker.registeredItem());
    const requests = await Promise.all(items.map((itemId) => world.request(itemId)));
    const outcomes = await Promise.all(requests.map((r) => world.outcomeOf(r.metadata.id, 60_000)));
    expect(outcomes.map((o) => [o.type, o.data.attempts])).toEqual(
      Array(10).fill(['RefreshAccepted', 1]),
    );
  });
});

describe('refresh worker: restarts', () => {
  it('keeps a parked retry across a restart and finishes it in the next worker', async () => {
    const world = await workerWorld();
    try {
      // A `later` failure with a huge base backoff: the first worker will not retry it itself.
      const env = { REFRESH_BACKOFF_BASE_MS: '60000', REFRESH_BACKOFF_MAX_MS: '3600000' };
      const first = await startWorker(world, env);
      const created = await world.sandbox.createItem({
        webhook: null,
        behaviour: { kind: 'transient', error_code: 'PLANNED_MAINTENANCE', failures: 1 },
      });
      await first.registerToken(created.item_id, created.access_token);
      const request = await world.request(created.item_id);
      const { Client } = await import('pg');
      const client = new Client({ connectionString: world.db.url });
      await client.connect();
      try {
        await waitFor('the refresh parked', async () => {
          const { rows } = await client.query(
            'SELECT attempts FROM refresh_retries WHERE item_id = $1',
            [created.item_id],
          );
          return rows.length === 1 ? rows : undefined;
        });
        await first.close();
        await client.query('UPDATE refresh_retries SET due_at = now() WHERE item_id = $1', [
          created.item_id,
        ]);
      } finally {
        await client.end();
      }

      const second = await startWorker(world, env);
      try {
        const outcome = await world.outcomeOf(request.metadata.id);
        expect(outcome.type).toBe('RefreshAccepted');
        expect(outcome.data.attempts).toBe(2);
      } finally {
        await second.close();
      }
    } finally {
      await world.close();
    }
  });
});

describe('refresh worker: stopping with a retry under way', () => {
  it('hands back the claim of a parked retry it cannot finish, so the next worker need not wait out the lease', async () => {
    const world = await workerWorld();
    const { Client } = await import('pg');
    const client = new Client({ connectionString: world.db.url });
    await client.connect();
    try {
      const env = {
        REFRESH_BACKOFF_BASE_MS: '60000',
        REFRESH_BACKOFF_MAX_MS: '3600000',
        SHUTDOWN_GRACE_MS: '500',
      };
      const worker = await startWorker(world, env);
      const created = await world.sandbox.createItem({
        webhook: null,
        behaviour: { kind: 'transient', error_code: 'PLANNED_MAINTENANCE', failures: 1 },
      });
      await worker.registerToken(created.item_id, created.access_token);
      await world.request(created.item_id);
      const claim = async () =>
        (
          await client.query<{ claimed_until: Date | null }>(
            'SELECT claimed_until FROM refresh_retries WHERE item_id = $1',
            [created.item_id],
          )
        ).rows[0];
      await waitFor('the refresh parked', async () => ((await claim()) ? true : undefined));
      // Plaid now never answers; the retry, due at once, is claimed and hangs.
      await world.sandbox.admin('PUT', `/items/${created.item_id}/behaviour`, { kind: 'timeout' });
      await client.query('UPDATE refresh_retries SET due_at = now() WHERE item_id = $1', [
        created.item_id,
      ]);
      await waitFor('the retry claimed', async () =>
        (await claim())?.claimed_until ? true : undefined,
      );
      await worker.close();
      expect((await claim())?.claimed_until).toBeNull();
    } finally {
      await client.end();
      await world.close();
    }
  });
});
