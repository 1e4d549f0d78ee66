import { SignJWT, exportJWK, generateKeyPair, type CryptoKey, type JWK } from 'jose';
import { createHash, randomUUID } from 'node:crypto';

/** Plaid's JWKPublicKey: what /webhook_verification_key/get returns for a kid. */
export interface PlaidJwk {
  alg: 'ES256';
  crv: 'P-256';
  kid: string;
  kty: 'EC';
  use: 'sig';
  x: string;
  y: string;
  created_at: number;
  expired_at: number | null;
}

interface SigningKey {
  readonly privateKey: CryptoKey;
  readonly jwk: PlaidJwk;
}

const unixSeconds = (date: Date) => Math.floor(date.getTime() / 1000);

/**
 * The sandbox's webhook signing keys (ES256, P-256). Webhooks are signed with the newest key;
 * rotating adds a key and keeps the old ones published; expiring sets `expired_at`, which
 * receivers must reject. Expiring the newest key without rotating leaves webhooks signed by an
 * expired key, so receivers' rejection can be tested.
 */
export class WebhookKeyRing {
  private readonly keys: SigningKey[] = [];

  async rotate(now: Date = new Date()): Promise<PlaidJwk> {
    const { privateKey, publicKey } = await generateKeyPair('ES256');
    const exported: JWK = await exportJWK(publicKey);
    const jwk: PlaidJwk = {
      alg: 'ES256',
      crv: 'P-256',
      kid: randomUUID(),
      kty: 'EC',
      use: 'sig',
      x: exported.x!,
      y: exported.y!,
      created_at: unixSeconds(now),
      expired_at: null,
    };
    this.keys.push({ privateKey, jwk });
    return { ...jwk };
  }

  expire(kid: string, now: Date = new Date()): PlaidJwk | undefined {
    const key = this.keys.find((k) => k.jwk.kid === kid);
    if (!key) return undefined;
    key.jwk.expired_at ??= unixSeconds(now);
    return { ...key.jwk };
  }

  publicKey(kid: string): PlaidJwk | undefined {
    const key = this.keys.find((k) => k.jwk.kid === kid);
    return key ? { ...key.jwk } : undefined;
  }

  list(): PlaidJwk[] {
    return this.keys.map((k) => ({ ...k.jwk }));
  }

  /**
   * The Plaid-Verification header for `body`: a JWT with `kid`, signed ES256, whose claims are
   * `iat` and the SHA-256 (hex) of the exact body bytes.
   */
  async sign(body: Buffer, now: Date = new Date()): Promise<string> {
    const key = this.keys[this.keys.length - 1];
    if (!key) throw new Error('no signing key: rotate() first');
    return new SignJWT({ request_body_sha256: createHash('sha256').update(body).digest('hex') })
      .setProtectedHeader({ alg: 'ES256', kid: key.jwk.kid, typ: 'JWT' })
      .setIssuedAt(unixSeconds(now))
      .sign(key.privateKey);
  }
}
