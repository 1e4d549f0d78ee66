import {
  decodeEvent,
  topicName,
  type ItemHealthRestored,
  type ItemNeedsAttention,
  type RefreshFailed,
} from '@cashflow/contracts';
import { readEndOffsets } from '@cashflow/kafka';
import { Client } from 'pg';
import { collect, uncommitted } from '../../support/kafka';
import {
  startWorker,
  workerWorld,
  type Worker,
  type WorkerWorld,
} from '../../support/refresh-worker';
import { waitFor } from '../../support/wait-for';
import { startIngress, type Ingress } from '../../support/webhook-ingress';

/**
 * Item health (apps/refresh-worker/src/health/item-health.ts), end to end over real HTTP and
 * Kafka: the sandbox sends signed Item webhooks to a real ingress, which publishes them to the
 * plaid-webhooks topic; the worker folds them and its own outcomes into each Item's health,
 * publishes every change once, and refuses refreshes of Items that need their user without a
 * Plaid call (the sandbox's call count proves it).
 */
type HealthEvent = ItemNeedsAttention | ItemHealthRestored;

let world: WorkerWorld;
let ingress: Ingress;
let worker: Worker;
let health: Awaited<ReturnType<typeof collect>>;
let sql: Client;

beforeAll(async () => {
  // Plaid's 10 s webhook time-out, unscaled: the ingress answers once Kafka has the event, and a
  // loaded machine must not make the sandbox give up on it.
  world = await workerWorld({ PLAID_SANDBOX_WEBHOOK_TIMEOUT_MS: '10000' });
  ingress = await startIngress({
    KAFKA_TOPIC_PREFIX: world.prefix,
    PLAID_SANDBOX_URL: world.sandbox.url,
  });
  worker = await startWorker(world);
  health = await collect(world.kafka, [topicName('itemHealth', world.prefix)]);
  sql = new Client({ connectionString: world.db.url });
  await sql.connect();
});

afterAll(async () => {
  await sql?.end();
  await health?.stop();
  await worker?.close();
  await ingress?.close();
  await world?.close();
});

/** A sandbox Item whose webhooks go to the ingress, its token registered with the worker. */
async function itemWithWebhooks(): Promise<{ itemId: string; accessToken: string }> {
  const created = await world.sandbox.createItem({ webhook: ingress.url });
  await worker.registerToken(created.item_id, created.access_token);
  return { itemId: created.item_id, accessToken: created.access_token };
}

function changesOf(itemId: string): HealthEvent[] {
  return health.received.flatMap((r) => {
    const decoded = decodeEvent(r.message);
    if (!decoded.ok || decoded.value.data.item_id !== itemId) return [];
    const e = decoded.value;
    return e.type === 'ItemNeedsAttention' || e.type === 'ItemHealthRestored' ? [e] : [];
  });
}

/** Waits for the Item's `count`-th health change and returns all of them. */
async function untilChanges(itemId: string, count: number): Promise<HealthEvent[]> {
  return waitFor(
    `${count} health changes of ${itemId}`,
    () => {
      const changes = changesOf(itemId);
      return changes.length >= count ? changes : undefined;
    },
    30_000,
  );
}

/**
 * Resolves once the worker's group has committed everything on the webhook and outcome topics
 * as they are now: every fact written so far has been folded. Counting after this is sound.
 */
async function workerCaughtUp(): Promise<void> {
  const ends = await readEndOffsets(world.kafka, [
    topicName('plaidWebhooks', world.prefix),
    topicName('refreshOutcomes', world.prefix),
    topicName('reportOutcomes', world.prefix),
  ]);
  const group = `${world.prefix}cashflow-refresh-worker`;
  const admin = world.kafka.admin();
  await admin.connect();
  try {
    await waitFor(
      'the worker folded every webhook, outcome and report',
      async () => ((await uncommitted(admin, group, ends)) === 0n ? true : undefined),
      30_000,
    );
  } finally {
    await admin.disconnect();
  }
  // What the worker folded, it published before committing; read it to the end.
  await health.toEnd();
}

async function itemWebhook(itemId: string, body: Record<string, unknown>): Promise<void> {
  const { status, body: answer } = await world.sandbox.admin(
    'POST',
    `/items/${encodeURIComponent(itemId)}/item_webhook`,
    body,
  );
  if (status !== 201) throw new Error(`item_webhook: ${status} ${JSON.stringify(answer)}`);
}

/** Waits until the sandbox delivered every webhook of the Item (the ingress answers 200 only once Kafka has it). */
async function delivered(itemId: string): Promise<void> {
  await waitFor(
    `webhooks of ${itemId} delivered`,
    async () => {
      const { body } = await world.sandbox.admin(
        'GET',
        `/webhooks?item_id=${encodeURIComponent(itemId)}`,
      );
      const deliveries = body.deliveries as { state: string }[];
      return deliveries.every((d) => d.state === 'delivered') ? true : undefined;
    },
    30_000,
  );
}

async function sandboxPost(itemId: string, action: 'break_login' | 'repair_login') {
  const { status } = await world.sandbox.admin(
    'POST',
    `/items/${encodeURIComponent(itemId)}/${action}`,
  );
  if (status !== 200) throw new Error(`${action}: ${status}`);
}

async function factsOf(itemId: string): Promise<unknown> {
  const { rows } = await sql.query<{ facts: unknown }>(
    'SELECT facts FROM item_health WHERE item_id = $1',
    [itemId],
  );
  return rows[0]?.facts;
}

async function healthRow(itemId: string) {
  const { rows } = await sql.query<{ status: string; reason: string | null }>(
    'SELECT status, reason FROM item_health WHERE item_id = $1',
    [itemId],
  );
  return rows[0];
}

describe('refresh worker: Item health', () => {
  it('refuses a refresh of an Item whose login broke without calling Plaid, and refreshes it again after LOGIN_REPAIRED', async () => {
    const { itemId } = await itemWithWebhooks();
    await sandboxPost(itemId, 'break_login');
    const [broke] = await untilChanges(itemId, 1);
    expect(broke).toMatchObject({
      type: 'ItemNeedsAttention',
      metadata: { source: 'urn:cashflow-refresh:refresh-worker' },
      data: {
        item_id: itemId,
        sequence: 1,
        health: { status: 'needs_user_action', reason: 'ITEM_LOGIN_REQUIRED' },
        previous: { status: 'healthy' },
        cause: { kind: 'item_webhook', code: 'ITEM_LOGIN_REQUIRED' },
      },
    });

    await workerCaughtUp();
    const factsBefore = await factsOf(itemId);
    const callsBefore = await world.plaidCalls(itemId);
    const refused = await world.request(itemId, { days_requested: 90 });
    const outcome = (await world.outcomeOf(refused.metadata.id)) as RefreshFailed;
    expect(outcome.type).toBe('RefreshFailed');
    expect(outcome.data).toMatchObject({
      attempts: 0,
      retryable: false,
      error: { source: 'worker', error_code: 'ITEM_LOGIN_REQUIRED' },
      item_health: { status: 'needs_user_action', reason: 'ITEM_LOGIN_REQUIRED', sequence: 1 },
    });
    expect(outcome.data.error.error_message).toMatch(/not sent to Plaid/);
    // The refusal is no fact about the Item: read by the worker, it changes nothing stored.
    await workerCaughtUp();
    expect(await world.plaidCalls(itemId)).toBe(callsBefore);
    expect(await factsOf(itemId)).toEqual(factsBefore);
    expect(changesOf(itemId)).toHaveLength(1);

    await sandboxPost(itemId, 'repair_login');
    const [, repaired] = await untilChanges(itemId, 2);
    expect(repaired).toMatchObject({
      type: 'ItemHealthRestored',
      data: {
        sequence: 2,
        previous: { status: 'needs_user_action', reason: 'ITEM_LOGIN_REQUIRED' },
        cause: { kind: 'item_webhook', code: 'LOGIN_REPAIRED' },
      },
    });
    const again = await world.request(itemId, { days_requested: 90 });
    expect((await world.outcomeOf(again.metadata.id)).type).toBe('RefreshAccepted');
    expect(await world.plaidCalls(itemId)).toBe(callsBefore + 1);

    // Every change is on Kafka and stamped; no change was published twice.
    await workerCaughtUp();
    expect(changesOf(itemId).map((e) => e.type)).toEqual([
      'ItemNeedsAttention',
      'ItemHealthRestored',
    ]);
    const unstamped = await sql.query(
      'SELECT 1 FROM item_health_events WHERE item_id = $1 AND published_at IS NULL',
      [itemId],
    );
    expect(unstamped.rows).toHaveLength(0);
  });

  it('changes health as each Item webhook says, and not for those that say nothing about it', async () => {
    const { itemId } = await itemWithWebhooks();
    // Nothing to do with whether the Item can be refreshed, and an error that passes by itself.
    await itemWebhook(itemId, { webhook_code: 'NEW_ACCOUNTS_AVAILABLE' });
    await itemWebhook(itemId, { webhook_code: 'WEBHOOK_UPDATE_ACKNOWLEDGED' });
    await itemWebhook(itemId, { webhook_code: 'ERROR', error_code: 'INSTITUTION_DOWN' });
    await delivered(itemId);
    await workerCaughtUp();
    expect(changesOf(itemId)).toEqual([]);
    // Only the token's registration is stored: none of those is a fact about the Item's health.
    expect(await factsOf(itemId)).toEqual({
      userError: null,
      revoked: null,
      expiring: null,
      acceptedAt: null,
      loginRepairedAt: null,
      tokenRegisteredAt: expect.any(String),
    });

    // Consent expiring: a date, and refreshes still go to Plaid.
    const until = '2027-01-10T00:00:00.000Z';
    await itemWebhook(itemId, { webhook_code: 'PENDING_EXPIRATION', at: until });
    const [expiring] = await untilChanges(itemId, 1);
    expect(expiring?.data).toMatchObject({
      health: { status: 'consent_expiring', reason: null, consent_expires_at: until },
      cause: { kind: 'item_webhook', code: 'PENDING_EXPIRATION' },
    });
    const calls = await world.plaidCalls(itemId);
    const through = await world.request(itemId, {});
    expect((await world.outcomeOf(through.metadata.id)).type).toBe('RefreshAccepted');
    expect(await world.plaidCalls(itemId)).toBe(calls + 1);

    // A disconnect notice with its own date: the newer notice's date.
    const disconnect = '2027-01-05T00:00:00.000Z';
    await itemWebhook(itemId, {
      webhook_code: 'PENDING_DISCONNECT',
      reason: 'INSTITUTION_TOKEN_EXPIRATION',
      at: disconnect,
    });
    const [, disconnecting] = await untilChanges(itemId, 2);
    expect(disconnecting?.data).toMatchObject({
      sequence: 2,
      health: { status: 'consent_expiring', consent_expires_at: disconnect },
      cause: { kind: 'item_webhook', code: 'PENDING_DISCONNECT' },
    });

    // Revoked is worse: refused.
    await itemWebhook(itemId, { webhook_code: 'USER_PERMISSION_REVOKED' });
    const [, , revoked] = await untilChanges(itemId, 3);
    expect(revoked?.data).toMatchObject({
      sequence: 3,
      health: { status: 'revoked', reason: 'USER_PERMISSION_REVOKED' },
      previous: { status: 'consent_expiring', consent_expires_at: disconnect },
    });
    const refused = await world.request(itemId, {});
    expect((await world.outcomeOf(refused.metadata.id)).data).toMatchObject({
      error: { error_code: 'USER_PERMISSION_REVOKED' },
      item_health: { status: 'revoked' },
    });
    expect(await world.plaidCalls(itemId)).toBe(calls + 1);
    expect(await healthRow(itemId)).toEqual({
      status: 'revoked',
      reason: 'USER_PERMISSION_REVOKED',
    });
  });

  it('learns a broken login from a refresh Plaid refused, lets a forced request through, and is healthy once Plaid accepts one', async () => {
    // No webhook URL: Plaid's answers are all the worker hears.
    const itemId = await worker.registeredItem();
    await sandboxPost(itemId, 'break_login');
    const first = await world.request(itemId, {});
    expect((await world.outcomeOf(first.metadata.id)).data).toMatchObject({
      attempts: 1,
      error: { source: 'plaid', error_code: 'ITEM_LOGIN_REQUIRED' },
    });
    const [broke] = await untilChanges(itemId, 1);
    expect(broke?.data).toMatchObject({
      health: { status: 'needs_user_action', reason: 'ITEM_LOGIN_REQUIRED' },
      cause: { kind: 'refresh_failed', code: 'ITEM_LOGIN_REQUIRED', event_id: expect.any(String) },
    });

    const calls = await world.plaidCalls(itemId);
    const refused = await world.request(itemId, {});
    expect((await world.outcomeOf(refused.metadata.id)).data).toMatchObject({ attempts: 0 });
    expect(await world.plaidCalls(itemId)).toBe(calls);

    // Forced: Plaid is called (and still refuses: nothing new to publish).
    const forced = await world.request(itemId, { force: true });
    expect((await world.outcomeOf(forced.metadata.id)).data).toMatchObject({
      attempts: 1,
      error: { source: 'plaid', error_code: 'ITEM_LOGIN_REQUIRED' },
    });
    expect(await world.plaidCalls(itemId)).toBe(calls + 1);

    // The user fixed it; no webhook tells us, but a forced refresh Plaid accepts does.
    await sandboxPost(itemId, 'repair_login');
    const fixed = await world.request(itemId, { force: true });
    const accepted = await world.outcomeOf(fixed.metadata.id);
    expect(accepted.type).toBe('RefreshAccepted');
    const [, restored] = await untilChanges(itemId, 2);
    expect(restored).toMatchObject({
      type: 'ItemHealthRestored',
      data: { cause: { kind: 'refresh_accepted', event_id: accepted.metadata.id } },
    });
    await workerCaughtUp();
    expect(changesOf(itemId)).toHaveLength(2);
  });

  it('learns a broken login from a report Plaid failed after accepting the refresh', async () => {
    const created = await world.sandbox.createItem({
      webhook: ingress.url,
      behaviour: { kind: 'webhook_error', error_code: 'ITEM_LOGIN_REQUIRED' },
    });
    const itemId = created.item_id;
    await worker.registerToken(itemId, created.access_token);
    const first = await world.request(itemId, {});
    const accepted = await world.outcomeOf(first.metadata.id);
    expect(accepted.type).toBe('RefreshAccepted');
    const [broke] = await untilChanges(itemId, 1);
    expect(broke?.data).toMatchObject({
      health: { status: 'needs_user_action', reason: 'ITEM_LOGIN_REQUIRED' },
      cause: { kind: 'report_failed', code: 'ITEM_LOGIN_REQUIRED' },
    });
    const calls = await world.plaidCalls(itemId);
    const refused = await world.request(itemId, {});
    expect((await world.outcomeOf(refused.metadata.id)).data).toMatchObject({ attempts: 0 });
    expect(await world.plaidCalls(itemId)).toBe(calls);
  });

  it('is healthy again when the Item gets another access token, and not when the same one is registered again', async () => {
    const { itemId, accessToken } = await itemWithWebhooks();
    await itemWebhook(itemId, { webhook_code: 'USER_ACCOUNT_REVOKED' });
    await untilChanges(itemId, 1);

    await worker.registerToken(itemId, accessToken);
    await workerCaughtUp();
    expect(changesOf(itemId)).toHaveLength(1);

    await worker.registerToken(itemId, `${accessToken}-relinked`);
    const [, restored] = await untilChanges(itemId, 2);
    expect(restored).toMatchObject({
      type: 'ItemHealthRestored',
      data: {
        previous: { status: 'revoked' },
        cause: { kind: 'token_registered', event_id: null },
      },
    });
    expect(await healthRow(itemId)).toEqual({ status: 'healthy', reason: null });
  });

  it('with ITEM_HEALTH_REFUSALS=false, still keeps health but sends every refresh to Plaid', async () => {
    await worker.close();
    worker = await startWorker(world, { ITEM_HEALTH_REFUSALS: 'false' });
    const { itemId } = await itemWithWebhooks();
    await itemWebhook(itemId, { webhook_code: 'ERROR', error_code: 'ITEM_LOGIN_REQUIRED' });
    await untilChanges(itemId, 1);
    const calls = await world.plaidCalls(itemId);
    const request = await world.request(itemId, {});
    expect((await world.outcomeOf(request.metadata.id)).type).toBe('RefreshAccepted');
    expect(await world.plaidCalls(itemId)).toBe(calls + 1);
  });
});
