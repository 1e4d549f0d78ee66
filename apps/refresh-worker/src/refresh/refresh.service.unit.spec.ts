import type { RefreshRequested } from '@cashflow/contracts';
import pino from 'pino';
import type { ClaimKeeper } from './claim-keeper';
import type { Clock } from './clock';
import type { OutcomePublisher } from './outcome-publisher';
import type { AttemptPlan, AttemptResult, PlaidAttempt } from './plaid-attempt';
import { ClientRateLimiter } from '@cashflow/plaid-client';
import type { RefreshStore } from './refresh-store';
import { RefreshService, Withdrawn } from './refresh.service';

/**
 * The service's own duties around the decider, with fakes for PostgreSQL, Plaid and Kafka: a
 * request let go while the store is busy is not decided again, and a client rate-limit turn is
 * given back when its call is not made.
 */

function deferred<T>() {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}
const settle = async () => {
  for (let i = 0; i < 10; i++) await new Promise((r) => setImmediate(r));
};

const NOW = Date.parse('2026-12-01T10:00:00Z');
const clock: Clock = { now: () => NOW, after: () => ({ cancel: () => undefined }) };
const outcomes = {
  recordAndSend: () => Promise.resolve(),
  sendAgain: () => Promise.resolve(),
} as unknown as OutcomePublisher;
/** Claims are kept alive by nobody here: the fake store never takes them over. */
const keeper = {
  leaseMs: 15_000,
  hold: () => undefined,
  drop: () => undefined,
} as unknown as ClaimKeeper;
/** The fake store's answer to startCall: the call's row, claimed. */
const claimed = (call: { itemId: string; members: { requestId: string; days: number }[] }) =>
  Promise.resolve({
    claim: {
      ...call,
      days: Math.max(...call.members.map((m) => m.days)),
      attempts: 0,
      lastError: null,
      dueAt: new Date(NOW),
      token: 'token-1',
    },
    answered: new Map(),
  });

/** The service with the fakes; Plaid's per-Item limit is 2 calls a minute. */
const serviceWith = (store: RefreshStore, attempt: PlaidAttempt, limiter: ClientRateLimiter) =>
  new RefreshService(
    store,
    attempt,
    limiter,
    keeper,
    outcomes,
    { limit: 2, windowMs: 61_000 },
    true,
    clock,
    pino({ level: 'silent' }),
  );

const request = (id: string, days: number) =>
  ({
    type: 'RefreshRequested',
    metadata: { id, source: 'urn:test', time: new Date(NOW).toISOString() },
    data: { item_id: 'item-1', days_requested: days },
  }) as unknown as RefreshRequested;
const outcome = (status: Promise<void>) =>
  status.then(
    () => 'answered',
    (error: unknown) => (error instanceof Withdrawn ? 'withdrawn' : `failed: ${String(error)}`),
  );

/** Plaid through `answers`, one per call; records the days of every call made. */
function plaid(answers: Promise<AttemptResult>[]) {
  const days: number[] = [];
  const attempt = {
    async make(_itemId: string, _attempts: number, plan: AttemptPlan): Promise<AttemptResult> {
      const giveBack = await plan.turn();
      const go = await plan.leaving(NOW);
      if (!go) {
        giveBack();
        return { kind: 'not_made' };
      }
      days.push(go.days);
      return answers.shift()!;
    },
  } as unknown as PlaidAttempt;
  return { attempt, days };
}

describe('RefreshService', () => {
  it('does not decide again a request let go while its waiting call was joining a parked call', async () => {
    const firstAnswer = deferred<AttemptResult>();
    const join = deferred<boolean>();
    const store = {
      known: () => Promise.resolve({}),
      recorded: () => Promise.resolve(new Map()),
      startCall: claimed,
      reschedule: () => Promise.resolve(true),
      join: () => join.promise,
    } as unknown as RefreshStore;
    const { attempt, days } = plaid([firstAnswer.promise]);
    const limiter = new ClientRateLimiter({ limit: 100, windowMs: 61_000 }, clock.now);
    const service = serviceWith(store, attempt, limiter);

    const first = new AbortController();
    const second = new AbortController();
    const r1 = outcome(
      service.handle(request('r1', 365), { reachedKafkaAt: NOW, signal: first.signal }),
    );
    await settle();
    // Wants more days than the running call: waits as the next call.
    const r2 = outcome(
      service.handle(request('r2', 730), { reachedKafkaAt: NOW, signal: second.signal }),
    );
    await settle();
    firstAnswer.resolve({
      kind: 'retry',
      attempts: 1,
      lastError: { source: 'worker', error_code: 'PLAID_TIMEOUT', error_message: 'slow' },
      dueAt: NOW + 60_000,
    });
    await settle(); // the call is parked; the waiting call is joining it (store.join under way)
    second.abort(); // r2's partition moves to another worker
    await settle();
    join.resolve(false); // the parked call was finished meanwhile
    await settle();

    expect(await r1).toBe('answered');
    expect(await r2).toBe('withdrawn');
    expect(days).toEqual([365]);
  });

  it('gives back the client turn of a call whose members all left before it could go', async () => {
    const token = deferred<void>();
    const store = {
      known: () => Promise.resolve({}),
      recorded: () => Promise.resolve(new Map()),
    } as unknown as RefreshStore;
    const { attempt, days } = plaid([]);
    const slowToken = {
      async make(itemId: string, attempts: number, plan: AttemptPlan) {
        await token.promise; // the vault is slow to answer
        return attempt.make(itemId, attempts, plan);
      },
    } as unknown as PlaidAttempt;
    const limiter = new ClientRateLimiter({ limit: 1, windowMs: 61_000 }, clock.now);
    const service = serviceWith(store, slowToken, limiter);

    const only = new AbortController();
    const r1 = outcome(
      service.handle(request('r1', 365), { reachedKafkaAt: NOW, signal: only.signal }),
    );
    await settle();
    only.abort();
    expect(await r1).toBe('withdrawn');
    token.resolve();
    await settle();

    expect(days).toEqual([]);
    expect(limiter.room(NOW)).toBe(1);
  });
});
