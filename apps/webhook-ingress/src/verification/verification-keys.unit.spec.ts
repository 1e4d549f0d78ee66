import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import { createHash } from 'node:crypto';
import { VerificationKeys, type KeyFetchResult, type PlaidWebhookJwk } from './verification-keys';
import { WebhookVerifier } from './webhook-verifier';

async function jwk(kid: string, expired = false): Promise<PlaidWebhookJwk> {
  const { publicKey } = await generateKeyPair('ES256');
  const { x, y } = await exportJWK(publicKey);
  return {
    kid,
    kty: 'EC',
    crv: 'P-256',
    alg: 'ES256',
    x: x!,
    y: y!,
    expired_at: expired ? 1 : null,
  };
}

/** A fake Plaid: answers from a table and counts calls. */
function fakePlaid(answers: Record<string, KeyFetchResult>) {
  const calls: string[] = [];
  return {
    calls,
    fetcher: {
      fetch: (kid: string) => {
        calls.push(kid);
        return Promise.resolve(answers[kid] ?? { kind: 'not_found' as const });
      },
    },
  };
}

describe('VerificationKeys', () => {
  let now = 0;
  const options = { fetchesPerMinute: 3, cacheTtlMs: 60_000, now: () => now };

  beforeEach(() => {
    now = 1_000_000;
  });

  it('fetches a kid once, and once for concurrent lookups', async () => {
    const plaid = fakePlaid({ k1: { kind: 'found', jwk: await jwk('k1') } });
    const keys = new VerificationKeys(plaid.fetcher, options);
    const results = await Promise.all([keys.get('k1'), keys.get('k1'), keys.get('k1')]);
    expect(results.map((r) => r.kind)).toEqual(['key', 'key', 'key']);
    expect((await keys.get('k1')).kind).toBe('key');
    expect(plaid.calls).toEqual(['k1']);
  });

  it('refuses an expired key', async () => {
    const plaid = fakePlaid({ old: { kind: 'found', jwk: await jwk('old', true) } });
    const keys = new VerificationKeys(plaid.fetcher, options);
    expect((await keys.get('old')).kind).toBe('expired_key');
  });

  it('asks Plaid again after the cache TTL, and then honours an expiry', async () => {
    const fresh = await jwk('k');
    const answers: Record<string, KeyFetchResult> = { k: { kind: 'found', jwk: fresh } };
    const plaid = fakePlaid(answers);
    const keys = new VerificationKeys(plaid.fetcher, options);
    expect((await keys.get('k')).kind).toBe('key');
    answers.k = { kind: 'found', jwk: { ...fresh, expired_at: 123 } };
    now += 59_000;
    expect((await keys.get('k')).kind).toBe('key');
    now += 2_000;
    expect((await keys.get('k')).kind).toBe('expired_key');
    expect(plaid.calls).toEqual(['k', 'k']);
  });

  it('keeps using a cached key while Plaid is unavailable', async () => {
    const answers: Record<string, KeyFetchResult> = { k: { kind: 'found', jwk: await jwk('k') } };
    const plaid = fakePlaid(answers);
    const keys = new VerificationKeys(plaid.fetcher, options);
    await keys.get('k');
    answers.k = { kind: 'unavailable', reason: 'down' };
    now += 120_000;
    expect((await keys.get('k')).kind).toBe('key');
  });

  it('says unavailable (not unknown) when Plaid cannot be asked', async () => {
    const plaid = fakePlaid({ k: { kind: 'unavailable', reason: 'timeout' } });
    const keys = new VerificationKeys(plaid.fetcher, options);
    expect(await keys.get('k')).toEqual({ kind: 'unavailable', reason: 'timeout' });
  });

  it('bounds fetches for made-up kids, and remembers kids Plaid does not know', async () => {
    // 3 a minute: 1 open to any kid, 2 kept for kids presented repeatedly.
    const plaid = fakePlaid({});
    const keys = new VerificationKeys(plaid.fetcher, options);
    const kinds = [];
    for (let i = 0; i < 10; i++) kinds.push((await keys.get(`random-${i}`)).kind);
    expect(kinds).toEqual(['unknown_key', ...Array(9).fill('unavailable')]);
    expect((await keys.get('random-0')).kind).toBe('unknown_key');
    expect(plaid.calls).toEqual(['random-0']);
    // Presented again: the reserved part of the budget, until it too is spent.
    expect((await keys.get('random-5')).kind).toBe('unknown_key');
    expect((await keys.get('random-6')).kind).toBe('unknown_key');
    expect((await keys.get('random-7')).kind).toBe('unavailable');
    expect(plaid.calls).toHaveLength(3);
    now += 60_001;
    expect((await keys.get('random-8')).kind).toBe('unknown_key');
    expect(plaid.calls).toHaveLength(4);
  });

  it('gives the reserved fetches to the kid presented most often', async () => {
    const plaid = fakePlaid({});
    const keys = new VerificationKeys(plaid.fetcher, options);
    // Spend the minute's budget: the open fetch, then both reserved ones.
    await keys.get('opener');
    for (const kid of ['spender-1', 'spender-1', 'spender-2', 'spender-2']) await keys.get(kid);
    expect(plaid.calls).toEqual(['opener', 'spender-1', 'spender-2']);
    // Meanwhile one kid is presented four times, another twice.
    for (let i = 0; i < 4; i++) expect((await keys.get('often')).kind).toBe('unavailable');
    for (let i = 0; i < 2; i++) expect((await keys.get('seldom')).kind).toBe('unavailable');

    now += 60_001;
    await keys.get('opener-2'); // the open fetch goes to whoever comes first
    expect((await keys.get('seldom')).kind).toBe('unavailable');
    expect((await keys.get('often')).kind).toBe('unknown_key');
    expect((await keys.get('seldom')).kind).toBe('unknown_key');
    expect(plaid.calls.slice(3)).toEqual(['opener-2', 'often', 'seldom']);
  });

  it('says unavailable when Plaid returns something that is not a P-256 key', async () => {
    const bad = { ...(await jwk('k')), x: 'AAAA' };
    const plaid = fakePlaid({ k: { kind: 'found', jwk: bad } });
    const keys = new VerificationKeys(plaid.fetcher, options);
    expect((await keys.get('k')).kind).toBe('unavailable');
  });

  describe('a flood of made-up kids during a genuine key rotation', () => {
    const FETCHES_PER_MINUTE = 30;

    /** Plaid after a rotation: one new signing key, every other kid unknown to it. */
    async function rotatedPlaid() {
      const { publicKey, privateKey } = await generateKeyPair('ES256');
      const { x, y } = await exportJWK(publicKey);
      const kid = 'plaid-new-kid';
      const jwkOfNewKey: PlaidWebhookJwk = { kid, kty: 'EC', crv: 'P-256', x: x!, y: y! };
      const plaid = fakePlaid({ [kid]: { kind: 'found', jwk: jwkOfNewKey } });
      const sign = (body: Buffer, kidInHeader = kid) =>
        new SignJWT({ request_body_sha256: createHash('sha256').update(body).digest('hex') })
          .setProtectedHeader({ alg: 'ES256', kid: kidInHeader })
          .setIssuedAt(Math.floor(now / 1000))
          .sign(privateKey);
      return { plaid, sign, kid };
    }

    /** Plaid calls made in each minute of the test, by minute. */
    function callsPerMinute(times: number[]) {
      const perMinute = new Map<number, number>();
      for (const t of times)
        perMinute.set(Math.floor(t / 60_000), (perMinute.get(Math.floor(t / 60_000)) ?? 0) + 1);
      return Math.max(0, ...perMinute.values());
    }

    it('fetches and verifies the genuine new kid presented a few times among 30 made-up kids a minute', async () => {
      const { plaid, sign, kid } = await rotatedPlaid();
      const callTimes: number[] = [];
      const fetcher = {
        fetch: (k: string) => {
          callTimes.push(now);
          return plaid.fetcher.fetch(k);
        },
      };
      const keys = new VerificationKeys(fetcher, {
        fetchesPerMinute: FETCHES_PER_MINUTE,
        cacheTtlMs: 3_600_000,
        now: () => now,
      });
      const verifier = new WebhookVerifier(keys, { clockSkewMs: 30_000, now: () => now });
      const body = Buffer.from('{"webhook_code":"CASHFLOW_REPORT_READY"}');
      const start = now;
      let flooded = 0;
      const flood = async () => {
        const junk = await sign(body, `made-up-${flooded++}`);
        expect((await verifier.verify(body, junk)).kind).not.toBe('verified');
      };

      // A minute of flood (one made-up kid every 2 s) before Plaid's first webhook with its new
      // kid; then Plaid delivers every 10 s (at odd seconds), the flood going on in between.
      const answers: string[] = [];
      for (let second = 0; second < 110; second++, now += 1_000) {
        if (second % 2 === 0) await flood();
        if (second >= 60 && second % 10 === 1) {
          answers.push((await verifier.verify(body, await sign(body))).kind);
        }
      }

      expect(answers.slice(0, 3)).toContain('verified');
      expect(answers.slice(answers.indexOf('verified'))).toEqual(
        Array(answers.length - answers.indexOf('verified')).fill('verified'),
      );
      expect(plaid.calls.filter((k) => k === kid)).toHaveLength(1);
      expect(callsPerMinute(callTimes.map((t) => t - start))).toBeLessThanOrEqual(
        FETCHES_PER_MINUTE,
      );
    });

    it('still gets the genuine kid through when each made-up kid is presented twice', async () => {
      const { plaid, sign, kid } = await rotatedPlaid();
      const keys = new VerificationKeys(plaid.fetcher, {
        fetchesPerMinute: FETCHES_PER_MINUTE,
        cacheTtlMs: 3_600_000,
        now: () => now,
      });
      const verifier = new WebhookVerifier(keys, { clockSkewMs: 30_000, now: () => now });
      const body = Buffer.from('{"webhook_code":"CASHFLOW_REPORT_READY"}');
      let flooded = 0;
      const flood = async () => {
        const madeUp = `made-up-${flooded++}`;
        await verifier.verify(body, await sign(body, madeUp));
        await verifier.verify(body, await sign(body, madeUp));
      };
      const answers: string[] = [];
      for (let second = 0; second < 300; second++, now += 1_000) {
        if (second % 2 === 0) await flood();
        if (second >= 60 && second % 10 === 5) {
          answers.push((await verifier.verify(body, await sign(body))).kind);
        }
      }
      const firstVerified = answers.indexOf('verified');
      // Plaid delivers every 10 s here; within two minutes of its first webhook, it is through.
      expect(firstVerified).toBeGreaterThanOrEqual(0);
      expect(firstVerified).toBeLessThan(12);
      expect(plaid.calls.filter((k) => k === kid)).toHaveLength(1);
    });
  });
});
