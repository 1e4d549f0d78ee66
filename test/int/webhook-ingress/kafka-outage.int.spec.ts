import { randomUUID } from 'node:crypto';
import { dedicatedKafka } from '../../support/infra';
import { waitFor } from '../../support/wait-for';
import { ingressWorld, plaidSigned, webhookBody } from '../../support/webhook-ingress';

interface Attempt {
  readonly status: number | null;
}

/**
 * The broker goes away: the ingress must answer 503 (never 200, never 4xx) within Plaid's 10 s,
 * and once the broker is back, Plaid's retry must land exactly one event. The broker here is
 * the test's own, so stopping it disturbs no other test.
 */
describe('webhook ingress: Kafka unavailable', () => {
  let kafka: Awaited<ReturnType<typeof dedicatedKafka>>;
  let world: Awaited<ReturnType<typeof ingressWorld>>;

  beforeAll(async () => {
    kafka = await dedicatedKafka();
    world = await ingressWorld(
      {},
      {
        brokers: kafka.brokers,
        // Plaid's retry schedule at 1/100 (30 s -> 0.3 s, then 1.2 s, 4.8 s, 19 s...), with
        // Plaid's real 10 s answer window.
        sandboxEnv: {
          PLAID_SANDBOX_TIME_SCALE: '0.01',
          PLAID_SANDBOX_WEBHOOK_TIMEOUT_MS: '10000',
        },
      },
    );
  });
  afterAll(async () => {
    await world?.close();
    kafka?.remove();
  });

  it('answers 503 with Retry-After while the broker is down; Plaid’s retry lands once', async () => {
    const item = await world.sandbox.createItem({ webhook: world.ingress.url });
    kafka.stop();

    // A direct delivery: refused as unavailable, well inside Plaid's 10 s.
    const body = webhookBody(`item-${randomUUID()}`);
    const started = Date.now();
    const answer = await world.ingress.post(body, {
      'plaid-verification': await plaidSigned(world.sandbox, body),
    });
    expect(answer.status).toBe(503);
    expect(answer.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(Date.now() - started).toBeLessThan(10_000);

    // The sandbox's delivery fails the same way, and Plaid schedules a retry.
    await world.sandbox.admin('POST', `/items/${item.item_id}/fire_webhook`, {});
    await waitFor(
      'a refused delivery attempt',
      async () => {
        const { body: listed } = await world.sandbox.admin(
          'GET',
          `/webhooks?item_id=${item.item_id}`,
        );
        const attempts = (listed.deliveries[0]?.attempts ?? []) as Attempt[];
        return attempts.some((a) => a.status === 503) ? true : undefined;
      },
      30_000,
    );

    kafka.start();

    const delivery = await waitFor(
      'the delivery to succeed after the broker returns',
      async () => {
        const { body: listed } = await world.sandbox.admin(
          'GET',
          `/webhooks?item_id=${item.item_id}`,
        );
        const first = listed.deliveries[0] as { state: string; attempts: Attempt[] } | undefined;
        return first?.state === 'delivered' ? first : undefined;
      },
      60_000,
    );
    const statuses = delivery.attempts.map((a) => a.status);
    expect(statuses[statuses.length - 1]).toBe(200);
    expect(statuses.slice(0, -1).every((s) => s === 503)).toBe(true);

    await world.reader.until(1, (r) => r.message.key?.toString() === item.item_id, 30_000);
    // Count only once everything stored so far has been read: a second copy would be there.
    await world.reader.toEnd(30_000);
    const events = world.events().filter((e) => e.data.item_id === item.item_id);
    expect(events.map((e) => e.type)).toEqual(['ReportReady']);
    // Nothing from the refused direct delivery was stored.
    expect(world.events().filter((e) => e.data.item_id !== item.item_id)).toEqual([]);
  });
});
