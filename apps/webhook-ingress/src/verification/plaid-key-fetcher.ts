import type { PlaidClient } from '@cashflow/plaid-client';
import { z } from 'zod';
import { PlaidWebhookJwk, type KeyFetcher, type KeyFetchResult } from './verification-keys';

const KeyResponse = z.looseObject({ key: PlaidWebhookJwk, request_id: z.string().optional() });

/**
 * Error types with which Plaid says "this request is wrong", here: no such key id in this
 * environment. Anything else (API_ERROR, RATE_LIMIT_EXCEEDED, time-outs) is Plaid being
 * unavailable, and the webhook is answered 503 rather than 401.
 */
const NOT_FOUND_TYPES = new Set(['INVALID_REQUEST', 'INVALID_INPUT']);

/** Asks the configured Plaid environment's /webhook_verification_key/get for a key id. */
export class PlaidKeyFetcher implements KeyFetcher {
  constructor(private readonly plaid: PlaidClient) {}

  async fetch(kid: string): Promise<KeyFetchResult> {
    const result = await this.plaid.call(
      '/webhook_verification_key/get',
      { key_id: kid },
      KeyResponse,
    );
    if (result.ok) {
      if (result.value.key.kid !== kid) {
        return { kind: 'unavailable', reason: 'Plaid answered with a key for another kid' };
      }
      return { kind: 'found', jwk: result.value.key };
    }
    const error = result.error;
    if (error.kind === 'plaid' && NOT_FOUND_TYPES.has(error.error.error_type)) {
      return { kind: 'not_found' };
    }
    const reason =
      error.kind === 'plaid'
        ? `Plaid answered ${error.httpStatus} ${error.error.error_code}`
        : `${error.kind}: ${error.message}`;
    return { kind: 'unavailable', reason };
  }
}
