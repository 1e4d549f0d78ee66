import { decodeProtectedHeader, importJWK, jwtVerify, type JWTPayload } from 'jose';
import { createHash, timingSafeEqual } from 'node:crypto';
import { nonConformities } from '../../support/plaid-schemas';
import {
  startSandbox,
  webhookReceiver,
  type ReceivedWebhook,
  type Sandbox,
} from '../../support/plaid-sandbox';
import { waitFor } from '../../support/wait-for';

/**
 * Verifies a delivery the way Plaid tells receivers to, written here with jose and independent of
 * the sandbox's signing code: ES256 only, key fetched by kid, not expired, signature, iat within
 * 5 minutes, SHA-256 of the raw body equal to the claim (constant-time compare).
 */
async function verifyDelivery(
  sandbox: Sandbox,
  webhook: ReceivedWebhook,
): Promise<JWTPayload & { kid: string }> {
  const jwt = webhook.headers['plaid-verification'];
  if (typeof jwt !== 'string') throw new Error('no Plaid-Verification header');
  const header = decodeProtectedHeader(jwt);
  if (header.alg !== 'ES256' || !header.kid)
    throw new Error(`unexpected JWT header ${JSON.stringify(header)}`);
  const { body } = await sandbox.plaid('/webhook_verification_key/get', { key_id: header.kid });
  if (body.key.expired_at !== null) throw new Error('signed with an expired key');
  const key = await importJWK(body.key, 'ES256');
  const { payload } = await jwtVerify(jwt, key, {
    algorithms: ['ES256'],
    maxTokenAge: '5 minutes',
  });
  const actual = Buffer.from(createHash('sha256').update(webhook.raw).digest('hex'));
  const claimed = Buffer.from(String(payload.request_body_sha256));
  if (actual.length !== claimed.length || !timingSafeEqual(actual, claimed))
    throw new Error('body hash mismatch');
  return { ...payload, kid: header.kid };
}

const refresh = (sandbox: Sandbox, token: string) =>
  sandbox.plaid('/cashflow_report/refresh', { access_token: token, days_requested: 30 });

/**
 * A sandbox sending its webhooks to a receiver of the test's. Its answer time-out is not the
 * scaled 10 ms: a loaded machine's first connection takes longer, and these tests expect first
 * attempts to be delivered (the retry policy's own tests scale it).
 */
async function sandboxWithReceiver() {
  const receiver = await webhookReceiver();
  const sandbox = await startSandbox({
    PLAID_SANDBOX_WEBHOOK_URL: receiver.url,
    PLAID_SANDBOX_RATE_LIMIT_PER_ITEM: '100',
    PLAID_SANDBOX_WEBHOOK_TIMEOUT_MS: '5000',
  });
  return { sandbox, receiver };
}

describe('Plaid sandbox webhooks', () => {
  let sandbox: Sandbox;
  let receiver: Awaited<ReturnType<typeof webhookReceiver>>;

  beforeAll(async () => {
    ({ sandbox, receiver } = await sandboxWithReceiver());
  });
  afterAll(async () => {
    await sandbox.close();
    await receiver.close();
  });

  async function nextWebhook(after: number) {
    return waitFor('a webhook', () => receiver.received[after]);
  }

  it('sends a signed CASHFLOW_REPORT_READY after a successful refresh', async () => {
    const item = await sandbox.createItem();
    const seen = receiver.received.length;
    expect((await refresh(sandbox, item.access_token)).status).toBe(200);
    const webhook = await nextWebhook(seen);

    const claims = await verifyDelivery(sandbox, webhook);
    expect(Math.abs(Date.now() / 1000 - claims.iat!)).toBeLessThan(60);
    expect(JSON.parse(webhook.raw.toString())).toEqual({
      webhook_type: 'CASHFLOW_REPORT',
      webhook_code: 'CASHFLOW_REPORT_READY',
      item_id: item.item_id,
      error: null,
      environment: 'sandbox',
    });
    // The hash covers the exact bytes: re-serialised JSON does not match.
    const reserialised = createHash('sha256')
      .update(JSON.stringify(JSON.parse(webhook.raw.toString())))
      .digest('hex');
    expect(reserialised).not.toBe(claims.request_body_sha256);

    const { body } = await sandbox.admin('GET', `/webhooks?item_id=${item.item_id}`);
    expect(body.deliveries).toEqual([
      expect.objectContaining({
        item_id: item.item_id,
        state: 'delivered',
        attempts: [expect.objectContaining({ status: 200 })],
      }),
    ]);
  });

  it('rejects a tampered body under the independent check', async () => {
    const item = await sandbox.createItem();
    const seen = receiver.received.length;
    await sandbox.admin('POST', `/items/${item.item_id}/fire_webhook`, {});
    const webhook = await nextWebhook(seen);
    const tampered = {
      ...webhook,
      raw: Buffer.from(webhook.raw.toString().replace('"error": null', '"error": {}')),
    };
    await expect(verifyDelivery(sandbox, tampered)).rejects.toThrow('body hash mismatch');
  });

  it('carries a PlaidError in the webhook when the extraction fails', async () => {
    const item = await sandbox.createItem({
      behaviour: { kind: 'webhook_error', error_code: 'INSTITUTION_NOT_RESPONDING' },
    });
    const seen = receiver.received.length;
    expect((await refresh(sandbox, item.access_token)).status).toBe(200);
    const webhook = await nextWebhook(seen);
    await verifyDelivery(sandbox, webhook);
    const body = JSON.parse(webhook.raw.toString());
    expect(body).toMatchObject({ webhook_code: 'CASHFLOW_REPORT_READY', item_id: item.item_id });
    expect(body.error).toMatchObject({
      error_type: 'INSTITUTION_ERROR',
      error_code: 'INSTITUTION_NOT_RESPONDING',
    });
    expect(nonConformities('PlaidError', body.error)).toEqual([]);
  });

  it('signs with a rotated key while the old key stays published', async () => {
    const item = await sandbox.createItem();
    let seen = receiver.received.length;
    await sandbox.admin('POST', `/items/${item.item_id}/fire_webhook`, {});
    const before = await verifyDelivery(sandbox, await nextWebhook(seen));

    const rotated = await sandbox.admin('POST', '/webhook_keys/rotate');
    expect(rotated.body.key.kid).not.toBe(before.kid);
    seen = receiver.received.length;
    await sandbox.admin('POST', `/items/${item.item_id}/fire_webhook`, {});
    const webhook = await nextWebhook(seen);
    const after = await verifyDelivery(sandbox, webhook);
    expect(after.kid).toBe(rotated.body.key.kid);

    // The old key is still served, but it does not verify the new signature.
    const old = await sandbox.plaid('/webhook_verification_key/get', { key_id: before.kid });
    expect(old.body.key.expired_at).toBeNull();
    const oldKey = await importJWK(old.body.key, 'ES256');
    await expect(
      jwtVerify(String(webhook.headers['plaid-verification']), oldKey),
    ).rejects.toThrow();
  });

  it('marks an expired key, so receivers reject what it signs', async () => {
    const item = await sandbox.createItem();
    const { body } = await sandbox.admin('GET', '/webhook_keys');
    const current = body.keys[body.keys.length - 1].kid as string;
    const expired = await sandbox.admin('POST', `/webhook_keys/${current}/expire`);
    expect(expired.body.key.expired_at).toEqual(expect.any(Number));

    const seen = receiver.received.length;
    await sandbox.admin('POST', `/items/${item.item_id}/fire_webhook`, {});
    await expect(verifyDelivery(sandbox, await nextWebhook(seen))).rejects.toThrow(
      'signed with an expired key',
    );
    await sandbox.admin('POST', '/webhook_keys/rotate');
  });
});

describe("Plaid sandbox webhook delivery follows Plaid's retry policy", () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0)) await cleanup();
  });

  /**
   * A sandbox on `scale` whose webhooks go to a receiver answering `reply`. The answer time-out
   * is `timeoutMs`, not Plaid's 10 s scaled (20 ms at scale 0.002): a loaded machine can take
   * longer than that to answer at all, which would turn a 500 into "no answer".
   */
  async function setup(
    scale: number,
    reply: Parameters<typeof webhookReceiver>[0],
    timeoutMs = 5000,
  ) {
    const receiver = await webhookReceiver(reply);
    const sandbox = await startSandbox({
      PLAID_SANDBOX_WEBHOOK_URL: receiver.url,
      PLAID_SANDBOX_TIME_SCALE: String(scale),
      PLAID_SANDBOX_WEBHOOK_TIMEOUT_MS: String(timeoutMs),
    });
    cleanups.push(
      () => receiver.close(),
      () => sandbox.close(),
    );
    const item = await sandbox.createItem();
    await sandbox.admin('POST', `/items/${item.item_id}/fire_webhook`, {});
    const delivery = (state: string) =>
      waitFor(
        `a ${state} delivery`,
        async () => {
          const { body } = await sandbox.admin('GET', `/webhooks?item_id=${item.item_id}`);
          return body.deliveries[0]?.state === state
            ? (body.deliveries[0] as {
                attempts: { at: string; status: number | null; error: string | null }[];
              })
            : undefined;
        },
        30_000,
        20,
      );
    return { receiver, delivery };
  }

  const gaps = (attempts: { at: string }[]) =>
    attempts.slice(1).map((a, i) => Date.parse(a.at) - Date.parse(attempts[i]!.at));

  it('retries a non-200 after 30 s, then 4x longer each time (scaled)', async () => {
    // Scale 0.002: retries after 60 ms and 240 ms.
    const { receiver, delivery } = await setup(0.002, (n) => ({ status: n < 3 ? 500 : 200 }));
    const done = await delivery('delivered');
    expect(done.attempts.map((a) => a.status)).toEqual([500, 500, 200]);
    const [first, second] = gaps(done.attempts) as [number, number];
    expect(first).toBeGreaterThanOrEqual(60);
    expect(second).toBeGreaterThanOrEqual(240);
    // Every attempt is signed afresh and carries the same body.
    expect(new Set(receiver.received.map((r) => r.headers['plaid-verification'])).size).toBe(3);
    expect(new Set(receiver.received.map((r) => r.raw.toString())).size).toBe(1);
  });

  it('treats no answer within the time-out as a failure and retries', async () => {
    // The receiver has 1 s to answer (Plaid's 10 s); it never answers the first attempt.
    const { delivery } = await setup(0.005, (n) => (n === 1 ? 'hang' : { status: 200 }), 1000);
    const done = await delivery('delivered');
    expect(done.attempts.map((a) => [a.status, a.error])).toEqual([
      [null, 'no answer within the time-out'],
      [200, null],
    ]);
  });

  it("honours a 429's Retry-After", async () => {
    // Scale 0.01: the normal first retry would come after 300 ms; Retry-After: 90 asks for 900 ms.
    const { delivery } = await setup(0.01, (n) =>
      n === 1 ? { status: 429, headers: { 'Retry-After': '90' } } : { status: 200 },
    );
    const done = await delivery('delivered');
    expect(done.attempts.map((a) => a.status)).toEqual([429, 200]);
    expect(gaps(done.attempts)[0]).toBeGreaterThanOrEqual(900);
  });

  it('gives up after 24 hours (scaled): seven attempts in all', async () => {
    // Retries at 30 s, 2 m, 8 m, 32 m, 2 h 8 m and 8 h 32 m; the next would pass 24 h.
    const { delivery } = await setup(0.0001, () => ({ status: 503 }));
    const done = await delivery('gave_up');
    expect(done.attempts).toHaveLength(7);
  });
});

describe('Plaid sandbox delivery log', () => {
  it('keeps at most PLAID_SANDBOX_DELIVERY_LOG_LIMIT deliveries, forgetting the oldest finished, and says how many', async () => {
    const receiver = await webhookReceiver();
    const sandbox = await startSandbox({ PLAID_SANDBOX_DELIVERY_LOG_LIMIT: '3' });
    try {
      const item = await sandbox.createItem({ webhook: receiver.url });
      const fired: string[] = [];
      for (let i = 0; i < 5; i += 1) {
        const { body } = await sandbox.admin('POST', `/items/${item.item_id}/fire_webhook`, {});
        fired.push(body.delivery.delivery_id as string);
        await waitFor('the delivery', () => (receiver.received.length > i ? true : undefined));
      }
      const { body } = await sandbox.admin('GET', '/webhooks');
      expect(body.forgotten).toBe(2);
      expect(body.deliveries.map((d: { delivery_id: string }) => d.delivery_id)).toEqual(
        fired.slice(2),
      );
    } finally {
      await sandbox.close();
      await receiver.close();
    }
  });
});

describe('Plaid sandbox Item webhooks', () => {
  let sandbox: Sandbox;
  let receiver: Awaited<ReturnType<typeof webhookReceiver>>;

  beforeAll(async () => {
    ({ sandbox, receiver } = await sandboxWithReceiver());
  });
  afterAll(async () => {
    await sandbox.close();
    await receiver.close();
  });

  const nextWebhook = (after: number) => waitFor('a webhook', () => receiver.received[after]);

  const SCHEMAS = {
    ERROR: 'ItemErrorWebhook',
    PENDING_EXPIRATION: 'PendingExpirationWebhook',
    PENDING_DISCONNECT: 'PendingDisconnectWebhook',
    USER_PERMISSION_REVOKED: 'UserPermissionRevokedWebhook',
    USER_ACCOUNT_REVOKED: 'UserAccountRevokedWebhook',
    LOGIN_REPAIRED: 'ItemLoginRepairedWebhook',
    NEW_ACCOUNTS_AVAILABLE: 'NewAccountsAvailableWebhook',
    WEBHOOK_UPDATE_ACKNOWLEDGED: 'WebhookUpdateAcknowledgedWebhook',
  } as const;

  it.each(Object.keys(SCHEMAS) as (keyof typeof SCHEMAS)[])(
    "fires %s signed, as Plaid's schema for it says",
    async (code) => {
      const item = await sandbox.createItem();
      const seen = receiver.received.length;
      const fired = await sandbox.admin('POST', `/items/${item.item_id}/item_webhook`, {
        webhook_code: code,
      });
      // A delivery made, as with fire_webhook.
      expect(fired.status).toBe(201);
      const webhook = await nextWebhook(seen);
      await verifyDelivery(sandbox, webhook);
      const body = JSON.parse(webhook.raw.toString()) as Record<string, unknown>;
      expect(body).toMatchObject({
        webhook_type: 'ITEM',
        webhook_code: code,
        item_id: item.item_id,
      });
      expect(nonConformities(SCHEMAS[code], body)).toEqual([]);
    },
  );

  it('fires ERROR with the error asked for, and refuses an unknown code', async () => {
    const item = await sandbox.createItem();
    const seen = receiver.received.length;
    await sandbox.admin('POST', `/items/${item.item_id}/item_webhook`, {
      webhook_code: 'ERROR',
      error_code: 'INSTITUTION_NOT_RESPONDING',
    });
    const body = JSON.parse((await nextWebhook(seen)).raw.toString()) as {
      error: { error_code: string };
    };
    expect(body.error.error_code).toBe('INSTITUTION_NOT_RESPONDING');
    const refused = await sandbox.admin('POST', `/items/${item.item_id}/item_webhook`, {
      webhook_code: 'SOMETHING_ELSE',
    });
    expect(refused.status).toBe(400);
  });

  it("breaks an Item's login (refreshes fail, ERROR sent) and repairs it (LOGIN_REPAIRED sent)", async () => {
    const item = await sandbox.createItem();
    let seen = receiver.received.length;
    expect((await sandbox.admin('POST', `/items/${item.item_id}/break_login`)).status).toBe(200);
    const broken = JSON.parse((await nextWebhook(seen)).raw.toString()) as {
      webhook_code: string;
      error: { error_code: string };
    };
    expect(broken).toMatchObject({
      webhook_code: 'ERROR',
      error: { error_code: 'ITEM_LOGIN_REQUIRED' },
    });
    const refused = await refresh(sandbox, item.access_token);
    expect(refused.status).toBe(400);
    expect(refused.body.error_code).toBe('ITEM_LOGIN_REQUIRED');

    seen = receiver.received.length;
    expect((await sandbox.admin('POST', `/items/${item.item_id}/repair_login`)).status).toBe(200);
    expect(JSON.parse((await nextWebhook(seen)).raw.toString())).toMatchObject({
      webhook_type: 'ITEM',
      webhook_code: 'LOGIN_REPAIRED',
    });
    expect((await refresh(sandbox, item.access_token)).status).toBe(200);
  });
});
