import { decodeProtectedHeader, jwtVerify } from 'jose';
import { createHash, timingSafeEqual } from 'node:crypto';
import type { VerificationKeys } from './verification-keys';

/** Why a webhook was refused (401). Also the `reason` label of the rejection metric. */
export type RejectionReason =
  | 'missing_header'
  | 'malformed_token'
  | 'unsupported_alg'
  | 'missing_kid'
  | 'unknown_key'
  | 'expired_key'
  | 'bad_signature'
  | 'missing_claims'
  | 'stale_iat'
  | 'future_iat'
  | 'body_mismatch';

export type Verification =
  | {
      readonly kind: 'verified';
      /** SHA-256 (hex) of the JWT: identifies this signed delivery. */
      readonly deliveryId: string;
      readonly kid: string;
      readonly issuedAt: number;
    }
  | { readonly kind: 'rejected'; readonly reason: RejectionReason }
  /** We could not verify now (Plaid's key endpoint unreachable): answer 503 so Plaid retries. */
  | { readonly kind: 'unavailable'; readonly reason: string };

export interface WebhookVerifierOptions {
  /** How far in the future `iat` may be. */
  readonly clockSkewMs: number;
  readonly now?: () => number;
}

/** Plaid: reject a webhook whose JWT was issued more than 5 minutes ago. */
export const MAX_TOKEN_AGE_S = 5 * 60;

const SHA256_HEX = /^[0-9a-f]{64}$/i;

/**
 * Verifies Plaid's `Plaid-Verification` header the way Plaid documents it: ES256 only, the key
 * for `kid` from the configured Plaid environment, a valid signature, `iat` at most 5 minutes
 * old, and the SHA-256 of the raw body bytes equal to `request_body_sha256` (compared in constant
 * time). Every failure is a value; nothing here throws for bad input.
 */
export class WebhookVerifier {
  private readonly now: () => number;

  constructor(
    private readonly keys: VerificationKeys,
    private readonly options: WebhookVerifierOptions,
  ) {
    this.now = options.now ?? Date.now;
  }

  async verify(rawBody: Buffer, token: string | undefined): Promise<Verification> {
    if (!token) return rejected('missing_header');

    let alg: unknown;
    let kid: unknown;
    try {
      ({ alg, kid } = decodeProtectedHeader(token));
    } catch {
      return rejected('malformed_token');
    }
    // Checked before any key is looked up: `none`, HS256 (with the public key as the secret) and
    // every other algorithm are refused outright.
    if (alg !== 'ES256') return rejected('unsupported_alg');
    if (typeof kid !== 'string' || kid.length === 0 || kid.length > 200) {
      return rejected('missing_kid');
    }

    const lookup = await this.keys.get(kid);
    if (lookup.kind === 'unavailable') return { kind: 'unavailable', reason: lookup.reason };
    if (lookup.kind !== 'key') return rejected(lookup.kind);

    let payload: Record<string, unknown>;
    try {
      ({ payload } = await jwtVerify(token, lookup.key, {
        algorithms: ['ES256'],
        // iat is checked below against Plaid's rule; exp / nbf, if ever present, by jose.
        currentDate: new Date(this.now()),
      }));
    } catch {
      return rejected('bad_signature');
    }

    const { iat, request_body_sha256: claimed } = payload;
    if (typeof iat !== 'number' || typeof claimed !== 'string' || !SHA256_HEX.test(claimed)) {
      return rejected('missing_claims');
    }
    const nowS = this.now() / 1000;
    if (nowS - iat > MAX_TOKEN_AGE_S) return rejected('stale_iat');
    if (iat - nowS > this.options.clockSkewMs / 1000) return rejected('future_iat');

    const actual = createHash('sha256').update(rawBody).digest();
    if (!timingSafeEqual(actual, Buffer.from(claimed, 'hex'))) return rejected('body_mismatch');

    return {
      kind: 'verified',
      deliveryId: createHash('sha256').update(token).digest('hex'),
      kid,
      issuedAt: iat,
    };
  }
}

function rejected(reason: RejectionReason): Verification {
  return { kind: 'rejected', reason };
}
