import { exportJWK, generateKeyPair } from 'jose';
import { VerificationKeys, type KeyFetchResult, type PlaidWebhookJwk } from './verification-keys';

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
    const plaid = fakePlaid({});
    const keys = new VerificationKeys(plaid.fetcher, options);
    const kinds = [];
    for (let i = 0; i < 10; i++) kinds.push((await keys.get(`random-${i}`)).kind);
    expect(kinds).toEqual([...Array(3).fill('unknown_key'), ...Array(7).fill('unavailable')]);
    expect((await keys.get('random-0')).kind).toBe('unknown_key');
    expect(plaid.calls).toHaveLength(3);
    now += 60_001;
    expect((await keys.get('random-5')).kind).toBe('unknown_key');
    expect(plaid.calls).toHaveLength(4);
  });

  it('says unavailable when Plaid returns something that is not a P-256 key', async () => {
    const bad = { ...(await jwk('k')), x: 'AAAA' };
    const plaid = fakePlaid({ k: { kind: 'found', jwk: bad } });
    const keys = new VerificationKeys(plaid.fetcher, options);
    expect((await keys.get('k')).kind).toBe('unavailable');
  });
});
