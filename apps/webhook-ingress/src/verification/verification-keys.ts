import { importJWK, type CryptoKey } from 'jose';
import { z } from 'zod';
import { KeyFetchBudget } from './key-fetch-budget';

/** Plaid's JWKPublicKey as /webhook_verification_key/get returns it (unknown fields kept). */
export const PlaidWebhookJwk = z.looseObject({
  kid: z.string().min(1),
  kty: z.literal('EC'),
  crv: z.literal('P-256'),
  alg: z.literal('ES256').optional(),
  x: z.string().min(1),
  y: z.string().min(1),
  created_at: z.number().optional(),
  expired_at: z.number().nullable().optional(),
});
export type PlaidWebhookJwk = z.infer<typeof PlaidWebhookJwk>;

/** What asking Plaid for one key id can come to. */
export type KeyFetchResult =
  | { readonly kind: 'found'; readonly jwk: PlaidWebhookJwk }
  /** Plaid answered that this environment has no such key. */
  | { readonly kind: 'not_found' }
  /** Plaid could not be asked (network, time-out, its own error): not the sender's fault. */
  | { readonly kind: 'unavailable'; readonly reason: string };

export interface KeyFetcher {
  fetch(kid: string): Promise<KeyFetchResult>;
}

export type KeyLookup =
  | { readonly kind: 'key'; readonly key: CryptoKey }
  | { readonly kind: 'unknown_key' }
  | { readonly kind: 'expired_key' }
  /** The key could not be obtained now; the webhook should be retried later (503). */
  | { readonly kind: 'unavailable'; readonly reason: string };

export interface VerificationKeysOptions {
  /**
   * Fetches allowed per minute: a flood of made-up kids costs Plaid at most this many calls.
   * Half is kept for kids presented repeatedly (see KeyFetchBudget).
   */
  readonly fetchesPerMinute: number;
  /** A cached key is used for this long, then Plaid is asked again (it may have expired it). */
  readonly cacheTtlMs: number;
  /** How long "Plaid has no such kid" is remembered. */
  readonly notFoundTtlMs?: number;
  /** Most kids remembered as not found (oldest forgotten first). */
  readonly maxNotFound?: number;
  readonly now?: () => number;
}

interface CachedKey {
  readonly key: CryptoKey | undefined;
  readonly expired: boolean;
  readonly fetchedAt: number;
}

const MINUTE_MS = 60_000;

/**
 * Plaid's webhook verification keys by kid: fetched on first use, cached, fetched again once
 * `cacheTtlMs` has passed so a key Plaid expires stops being accepted. Concurrent lookups of one
 * kid share one fetch, and fetches are budgeted per minute, so random kids cannot make us hammer
 * Plaid, nor keep Plaid's genuinely new kid out (KeyFetchBudget). A key whose `expired_at` is
 * set is never used.
 */
export class VerificationKeys {
  private readonly cache = new Map<string, CachedKey>();
  private readonly notFound = new Map<string, number>();
  private readonly pending = new Map<string, Promise<KeyLookup>>();
  private readonly budget: KeyFetchBudget;
  private readonly now: () => number;

  constructor(
    private readonly fetcher: KeyFetcher,
    private readonly options: VerificationKeysOptions,
  ) {
    this.now = options.now ?? Date.now;
    this.budget = new KeyFetchBudget({ fetchesPerMinute: options.fetchesPerMinute });
  }

  async get(kid: string): Promise<KeyLookup> {
    const cached = this.cache.get(kid);
    const now = this.now();
    if (cached && now - cached.fetchedAt < this.options.cacheTtlMs) return lookupOf(cached);
    const forgottenAt = this.notFound.get(kid);
    if (forgottenAt !== undefined && now < forgottenAt) return { kind: 'unknown_key' };

    const inFlight = this.pending.get(kid);
    if (inFlight) return inFlight;
    const mayFetch = cached ? this.budget.staleKid(now) : this.budget.unknownKid(kid, now);
    if (!mayFetch) {
      // A stale key still beats turning Plaid's genuine webhooks away while the budget refills.
      if (cached) return lookupOf(cached);
      return { kind: 'unavailable', reason: 'key fetch budget exhausted' };
    }
    const lookup = this.fetch(kid, cached).finally(() => this.pending.delete(kid));
    this.pending.set(kid, lookup);
    return lookup;
  }

  private async fetch(kid: string, stale: CachedKey | undefined): Promise<KeyLookup> {
    const result = await this.fetcher.fetch(kid);
    const now = this.now();
    switch (result.kind) {
      case 'found': {
        const expired = result.jwk.expired_at != null;
        let key: CryptoKey | undefined;
        try {
          key = expired ? undefined : await importPublicKey(result.jwk);
        } catch {
          return {
            kind: 'unavailable',
            reason: 'Plaid returned a key that is not a P-256 public key',
          };
        }
        const entry: CachedKey = { key, expired, fetchedAt: now };
        this.cache.set(kid, entry);
        this.notFound.delete(kid);
        this.budget.settled(kid);
        return lookupOf(entry);
      }
      case 'not_found':
        this.cache.delete(kid);
        this.rememberNotFound(kid, now);
        this.budget.settled(kid);
        return { kind: 'unknown_key' };
      case 'unavailable':
        return stale ? lookupOf(stale) : { kind: 'unavailable', reason: result.reason };
    }
  }

  private rememberNotFound(kid: string, now: number): void {
    const max = this.options.maxNotFound ?? 10_000;
    this.notFound.delete(kid);
    this.notFound.set(kid, now + (this.options.notFoundTtlMs ?? 5 * MINUTE_MS));
    while (this.notFound.size > max) {
      const oldest = this.notFound.keys().next().value as string;
      this.notFound.delete(oldest);
    }
  }
}

function lookupOf(entry: CachedKey): KeyLookup {
  if (entry.expired || !entry.key) return { kind: 'expired_key' };
  return { kind: 'key', key: entry.key };
}

async function importPublicKey(jwk: PlaidWebhookJwk): Promise<CryptoKey> {
  // Only the public coordinates: Plaid's extra fields (created_at, expired_at) are not JWK members.
  const key = await importJWK({ kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y }, 'ES256');
  if (key instanceof Uint8Array) throw new Error('not an asymmetric key');
  return key;
}
