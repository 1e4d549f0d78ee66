import { DLQ_HEADERS, topicName } from '@cashflow/contracts';
import { randomUUID } from 'node:crypto';
import { outcomeEventId } from '../../../apps/refresh-worker/src/refresh/outcomes';
import { collect } from '../../support/kafka';
import {
  startWorker,
  workerWorld,
  type Worker,
  type WorkerWorld,
} from '../../support/refresh-worker';

describe('refresh worker: one outcome per request', () => {
  let world: WorkerWorld;
  let worker: Worker;

  beforeAll(async () => {
    world = await workerWorld();
    worker = await startWorker(world, {
      REFRESH_MAX_ATTEMPTS: '3',
      PLAID_RESPONSE_TIMEOUT_MS: '400',
    });
  });
  afterAll(async () => {
    await worker.close();
    await world.close();
  });

  async function item(input: Parameters<WorkerWorld['sandbox']['createItem']>[0] = {}) {
    const created = await world.sandbox.createItem({ webhook: null, ...input });
    await worker.registerToken(created.item_id, created.access_token);
    return created;
  }

  const plaidCalls = (itemId: string) => world.plaidCalls(itemId);

  /** The worker's kafka_dead_letters_total for the request topic and `code` (0 from the start). */
  const deadLetters = async (code: string) => {
    const text = await (await fetch(`${worker.url}/metrics`)).text();
    const topic = topicName('refreshRequested', world.prefix).replace(/\./g, '\\.');
    const series = new RegExp(
      `^kafka_dead_letters_total\\{(?=[^}]*topic="${topic}")(?=[^}]*code="${code}")[^}]*\\} (\\d+)$`,
      'm',
    );
    const found = series.exec(text);
    if (!found) throw new Error(`no kafka_dead_letters_total series for ${code}`);
    return Number(found[1]);
  };

  it('calls Plaid and publishes RefreshAccepted with Plaid request id, days and attempts', async () => {
    const { item_id } = await item();
    const request = await world.request(item_id, { days_requested: 90 });
    const outcome = await world.outcomeOf(request.metadata.id);
    expect(outcome.type).toBe('RefreshAccepted');
    expect(outcome.data).toMatchObject({
      item_id,
      refresh_request_id: request.metadata.id,
      plaid_request_id: expect.stringMatching(/^[A-Za-z0-9]{15}$/),
      days_requested: 90,
      attempts: 1,
    });
    expect(outcome.metadata).toMatchObject({
      id: outcomeEventId(request.metadata.id),
      correlationId: request.metadata.id,
    });
  });

  it('asks Plaid for 365 days when the request does not say', async () => {
    const { item_id } = await item();
    const request = await world.request(item_id);
    expect((await world.outcomeOf(request.metadata.id)).data.days_requested).toBe(365);
  });

  it.each([0, 731, 30.5, -1])('refuses days_requested %p without calling Plaid', async (days) => {
    const { item_id } = await item();
    const request = await world.request(item_id, { days_requested: days });
    const outcome = await world.outcomeOf(request.metadata.id);
    expect(outcome.type).toBe('RefreshFailed');
    expect(outcome.data).toMatchObject({
      days_requested: days,
      error: { source: 'worker', error_code: 'INVALID_DAYS_REQUESTED' },
      retryable: false,
      attempts: 0,
    });
    expect(await plaidCalls(item_id)).toBe(0);
  });

  it('fails an Item without a registered token with UNKNOWN_ITEM', async () => {
    const request = await world.request('item-nobody-registered');
    expect((await world.outcomeOf(request.metadata.id)).data).toMatchObject({
      error: { source: 'worker', error_code: 'UNKNOWN_ITEM' },
      retryable: false,
      attempts: 0,
    });
  });

  it.each([
    [{ behaviour: { kind: 'item_login_required' as const } }, 'ITEM_ERROR', 'ITEM_LOGIN_REQUIRED'],
    [
      {
        institution_id: 'ins_128026',
        accounts: [{ name: 'Card', type: 'credit' as const, subtype: 'credit card' }],
      },
      'ITEM_ERROR',
      'PRODUCTS_NOT_SUPPORTED',
    ],
    [{ cashflow_report_enabled: false }, 'ITEM_ERROR', 'PRODUCT_NOT_ENABLED'],
  ])("fails at once, without retrying, on Plaid's %j", async (setup, type, code) => {
    const { item_id } = await item(setup);
    const request = await world.request(item_id);
    const outcome = await world.outcomeOf(request.metadata.id);
    expect(outcome.type).toBe('RefreshFailed');
    expect(outcome.data).toMatchObject({
      error: {
        source: 'plaid',
        error_type: type,
        error_code: code,
        http_status: 400,
        plaid_request_id: expect.any(String),
      },
      retryable: false,
      attempts: 1,
    });
    expect(outcome.data).toHaveProperty('error.display_message');
    expect(await plaidCalls(item_id)).toBe(1);
  });

  it('retries 500s with backoff and then succeeds', async () => {
    const { item_id } = await item({
      behaviour: { kind: 'transient', error_code: 'INTERNAL_SERVER_ERROR', failures: 2 },
    });
    const request = await world.request(item_id);
    const outcome = await world.outcomeOf(request.metadata.id);
    expect(outcome.type).toBe('RefreshAccepted');
    expect(outcome.data.attempts).toBe(3);
    expect(await plaidCalls(item_id)).toBe(3);
  });

  it('gives up after the attempt budget, saying the failure is retryable', async () => {
    const { item_id } = await item({
      behaviour: { kind: 'transient', error_code: 'INTERNAL_SERVER_ERROR', failures: 50 },
    });
    const request = await world.request(item_id);
    const outcome = await world.outcomeOf(request.metadata.id);
    expect(outcome.data).toMatchObject({
      error: {
        source: 'plaid',
        error_type: 'API_ERROR',
        error_code: 'INTERNAL_SERVER_ERROR',
        http_status: 500,
      },
      retryable: true,
      attempts: 3,
    });
  });

  it('treats a Plaid call that does not answer in time as a retryable failure', async () => {
    const { item_id } = await item({ behaviour: { kind: 'timeout' } });
    const request = await world.request(item_id);
    const outcome = await world.outcomeOf(request.metadata.id);
    expect(outcome.data).toMatchObject({
      error: { source: 'worker', error_code: 'PLAID_TIMEOUT' },
      retryable: true,
      attempts: 3,
    });
  });

  it('dead-letters an undecodable request and carries on', async () => {
    const dlq = await collect(world.kafka, [topicName('deadLetter', world.prefix)]);
    try {
      const producer = world.kafka.producer();
      await producer.connect();
      await producer.send({
        topic: topicName('refreshRequested', world.prefix),
        messages: [
          {
            key: 'item-x',
            value: '{"item_id": 42}',
            headers: { ce_specversion: '1.0', ce_type: 'cashflow-refresh.RefreshRequested.v1' },
          },
        ],
      });
      await producer.disconnect();
      const [letter] = await dlq.until(1);
      expect(letter!.message.headers?.[DLQ_HEADERS.errorCode]?.toString()).toBe('MISSING_HEADER');
      expect(letter!.message.value?.toString()).toBe('{"item_id": 42}');
      // Counted for ops (the CashflowDeadLetters alert), by topic and code.
      expect(await deadLetters('MISSING_HEADER')).toBe(1);

      const { item_id } = await item();
      const request = await world.request(item_id);
      expect((await world.outcomeOf(request.metadata.id)).type).toBe('RefreshAccepted');
    } finally {
      await dlq.stop();
    }
  });

  it('answers a redelivered request without a second Plaid call', async () => {
    const { item_id } = await item();
    const first = await world.request(item_id);
    await world.outcomeOf(first.metadata.id);
    await world.request(item_id, {}, first.metadata.id);
    const marker = await world.request(item_id, { days_requested: 1 });
    await world.outcomeOf(marker.metadata.id);
    const answers = world.outcomesFor(first.metadata.id);
    expect(new Set(answers.map((a) => a.metadata.id)).size).toBe(1);
    expect(await plaidCalls(item_id)).toBe(2);
  });

  it('refuses to the dead-letter topic a request id another upstream already used for another Item', async () => {
    const dlq = await collect(world.kafka, [topicName('deadLetter', world.prefix)]);
    try {
      const first = await item();
      const second = await item();
      const id = randomUUID();
      await world.request(first.item_id, {}, id, { source: 'urn:test:upstream-a' });
      expect((await world.outcomeOf(id)).data.item_id).toBe(first.item_id);
      // CloudEvents ids are unique per source only: another upstream may pick the same one.
      await world.request(second.item_id, {}, id, { source: 'urn:test:upstream-b' });
      const [letter] = await dlq.until(
        1,
        (r) => r.message.headers?.[DLQ_HEADERS.errorCode]?.toString() === 'REQUEST_ID_CONFLICT',
      );
      expect(letter!.message.key?.toString()).toBe(second.item_id);
      expect(letter!.message.headers?.[DLQ_HEADERS.reason]?.toString()).toContain(first.item_id);
      expect(await deadLetters('REQUEST_ID_CONFLICT')).toBe(1);
      // Not answered with the first Item's outcome, and Plaid not called for it.
      const marker = await world.request(second.item_id);
      await world.outcomeOf(marker.metadata.id);
      expect(world.outcomesFor(id).every((o) => o.data.item_id === first.item_id)).toBe(true);
      expect(await plaidCalls(second.item_id)).toBe(1);
    } finally {
      await dlq.stop();
    }
  });

  it('counts outcomes and Plaid calls in its metrics', async () => {
    // Every dead-letter code is there from the start, so the first letter is an increase.
    expect(await deadLetters('HANDLER_FAILED')).toBe(0);
    const text = await (await fetch(`${worker.url}/metrics`)).text();
    expect(text).toMatch(
      /refresh_outcomes_total\{type="RefreshAccepted",error_code="none",coalesced="no",service="refresh-worker"\} [1-9]/,
    );
    expect(text).toMatch(
      /refresh_outcomes_total\{type="RefreshFailed",error_code="INVALID_DAYS_REQUESTED",coalesced="no",service="refresh-worker"\} 4/,
    );
    expect(text).toMatch(
      /plaid_refresh_call_seconds_count\{[^}]*result="ITEM_LOGIN_REQUIRED"[^}]*\} 1\n/,
    );
    expect(text).toContain('refresh_requests_in_flight');
  });
});
