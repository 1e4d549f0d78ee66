import { SignJWT, exportSPKI, generateKeyPair, importJWK, type CryptoKey } from 'jose';
import { createHash, randomUUID } from 'node:crypto';
import { startSandbox } from '../../support/plaid-sandbox';
import { currentKid, ingressWorld, plaidSigned, webhookBody } from '../../support/webhook-ingress';

type World = Awaited<ReturnType<typeof ingressWorld>>;

const sha256 = (body: Buffer) => createHash('sha256').update(body).digest('hex');
const nowS = () => Math.floor(Date.now() / 1000);

/** A JWT header and claims encoded without any signature (`alg: none`). */
function unsigned(header: object, claims: object): string {
  const part = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
  return `${part(header)}.${part(claims)}.`;
}

describe('webhook ingress: verification', () => {
  let world: World;

  beforeAll(async () => {
    world = await ingressWorld();
  });
  afterAll(async () => {
    await world.close();
  });

  /**
   * Sends each forged request, then one valid webhook for the same Item (same partition), and
   * checks that once the valid one has arrived it is the only event for that Item.
   */
  async function expectNothingPublished(itemId: string) {
    const marker = webhookBody(itemId, { marker: true });
    const answer = await world.ingress.post(marker, {
      'plaid-verification': await plaidSigned(world.sandbox, marker),
    });
    expect(answer.status).toBe(200);
    await world.reader.until(1, (r) => r.message.key?.toString() === itemId);
    const forItem = world.events().filter((e) => e.data.item_id === itemId);
    expect(forItem).toHaveLength(1);
    expect((forItem[0]!.data as { webhook: { marker?: boolean } }).webhook.marker).toBe(true);
  }

  it('turns a validly signed CASHFLOW_REPORT_READY into exactly one ReportReady', async () => {
    const itemId = `item-${randomUUID()}`;
    const body = webhookBody(itemId, { unknown_field: { kept: [1, 2] } });
    const jwt = await plaidSigned(world.sandbox, body);
    const answer = await world.ingress.post(body, { 'plaid-verification': jwt });

    expect(answer.status).toBe(200);
    expect(answer.body).toEqual({ status: 'accepted', event_id: expect.any(String) });
    const [record] = await world.reader.until(1, (r) => r.message.key?.toString() === itemId);
    const event = world.events().find((e) => e.data.item_id === itemId)!;
    expect(record!.topic).toBe(world.topics.reports);
    expect(event.type).toBe('ReportReady');
    expect(event.metadata.id).toBe(answer.body.event_id);
    expect(event.data).toMatchObject({
      item_id: itemId,
      webhook_type: 'CASHFLOW_REPORT',
      webhook_code: 'CASHFLOW_REPORT_READY',
      environment: 'sandbox',
      delivery_id: sha256(Buffer.from(jwt)),
      webhook: { unknown_field: { kept: [1, 2] }, error: null },
    });
    expect(
      await world.ingress.metric('webhook_requests_total', { outcome: 'accepted' }),
    ).toBeGreaterThan(0);
  });

  describe('refuses with 401 and publishes nothing when', () => {
    const cases: [string, string, (body: Buffer) => Promise<Record<string, string>>][] = [
      ['the header is missing', 'missing_header', () => Promise.resolve({})],
      [
        'alg is none',
        'unsupported_alg',
        async (body) => ({
          'plaid-verification': unsigned(
            { alg: 'none', kid: await currentKid(world.sandbox), typ: 'JWT' },
            { iat: nowS(), request_body_sha256: sha256(body) },
          ),
        }),
      ],
      [
        'it is HS256 with the public key as the secret',
        'unsupported_alg',
        async (body) => {
          const kid = await currentKid(world.sandbox);
          const { body: answer } = await world.sandbox.plaid('/webhook_verification_key/get', {
            key_id: kid,
          });
          // The classic confusion attack: the public key's PEM as the HMAC secret.
          const publicKey = await importJWK(answer.key, 'ES256', { extractable: true });
          const secret = new TextEncoder().encode(await exportSPKI(publicKey as CryptoKey));
          const jwt = await new SignJWT({ request_body_sha256: sha256(body) })
            .setProtectedHeader({ alg: 'HS256', kid })
            .setIssuedAt()
            .sign(secret);
          return { 'plaid-verification': jwt };
        },
      ],
      [
        'it is signed by another key under the current kid',
        'bad_signature',
        async (body) => {
          const { privateKey } = await generateKeyPair('ES256');
          const jwt = await new SignJWT({ request_body_sha256: sha256(body) })
            .setProtectedHeader({ alg: 'ES256', kid: await currentKid(world.sandbox) })
            .setIssuedAt()
            .sign(privateKey);
          return { 'plaid-verification': jwt };
        },
      ],
      [
        'the kid is unknown to Plaid',
        'unknown_key',
        async (body) => {
          const { privateKey } = await generateKeyPair('ES256');
          const jwt = await new SignJWT({ request_body_sha256: sha256(body) })
            .setProtectedHeader({ alg: 'ES256', kid: randomUUID() })
            .setIssuedAt()
            .sign(privateKey);
          return { 'plaid-verification': jwt };
        },
      ],
      [
        'iat is more than 5 minutes old',
        'stale_iat',
        async (body) => ({
          'plaid-verification': await plaidSigned(world.sandbox, body, nowS() - 301),
        }),
      ],
      [
        'iat is in the future beyond the clock skew',
        'future_iat',
        async (body) => ({
          'plaid-verification': await plaidSigned(world.sandbox, body, nowS() + 120),
        }),
      ],
      [
        'the body differs by one byte',
        'body_mismatch',
        async (body) => {
          const jwt = await plaidSigned(world.sandbox, body);
          body.write('I', body.indexOf('"item_id"') + 1); // item_id -> Item_id
          return { 'plaid-verification': jwt };
        },
      ],
      [
        'the body was reformatted (whitespace only)',
        'body_mismatch',
        async (body) => {
          const jwt = await plaidSigned(world.sandbox, body);
          const compact = Buffer.from(JSON.stringify(JSON.parse(body.toString())));
          compact.copy(body.fill(0x20));
          return { 'plaid-verification': jwt };
        },
      ],
      [
        'the JWT is not a JWT',
        'malformed_token',
        () => Promise.resolve({ 'plaid-verification': 'not.a.jwt' }),
      ],
    ];

    it.each(cases)('%s', async (_name, reason, forge) => {
      const itemId = `item-${randomUUID()}`;
      const body = webhookBody(itemId);
      const headers = await forge(body);
      const answer = await world.ingress.post(body, headers);
      expect({ status: answer.status, body: answer.body }).toEqual({
        status: 401,
        body: { error: 'unauthorized', reason },
      });
      await expectNothingPublished(itemId);
      expect(
        await world.ingress.metric('webhook_verification_failures_total', { reason }),
      ).toBeGreaterThan(0);
    });

    it('the key has expired', async () => {
      await world.sandbox.admin('POST', '/webhook_keys/rotate');
      const itemId = `item-${randomUUID()}`;
      const body = webhookBody(itemId);
      const jwt = await plaidSigned(world.sandbox, body);
      await world.sandbox.admin('POST', `/webhook_keys/${await currentKid(world.sandbox)}/expire`);
      const answer = await world.ingress.post(body, { 'plaid-verification': jwt });
      expect(answer.status).toBe(401);
      expect(answer.body.reason).toBe('expired_key');
      await world.sandbox.admin('POST', '/webhook_keys/rotate');
      await expectNothingPublished(itemId);
    });

    it("the JWT comes from another Plaid environment's key", async () => {
      const other = await startSandbox();
      try {
        const itemId = `item-${randomUUID()}`;
        const body = webhookBody(itemId);
        const answer = await world.ingress.post(body, {
          'plaid-verification': await plaidSigned(other, body),
        });
        expect(answer.status).toBe(401);
        expect(answer.body.reason).toBe('unknown_key');
        await expectNothingPublished(itemId);
      } finally {
        await other.close();
      }
    });
  });

  it('never logs the JWT', async () => {
    const body = webhookBody(`item-${randomUUID()}`);
    const jwt = await plaidSigned(world.sandbox, body);
    await world.ingress.post(body, { 'plaid-verification': jwt });
    await world.ingress.post(Buffer.concat([body, Buffer.from(' ')]), {
      'plaid-verification': jwt,
    });
    const signature = jwt.split('.')[2]!;
    expect(world.ingress.logLines.join('')).not.toContain(signature);
    expect(world.ingress.logLines.join('')).toContain('verification failed');
  });
});
