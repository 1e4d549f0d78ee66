/**
 * An Item's health, pure: what Plaid's Item webhooks and the worker's own refresh answers say
 * about whether the Item can be refreshed without its user. No I/O and no clock: each fact
 * carries when it happened.
 *
 * Not wired yet (issue 17, "Item health"): the worker is to fold the Item webhooks of the
 * plaid-webhooks topic and its own refresh answers into this state per Item, fail a refresh of
 * an Item that needs its user at once (no Plaid call) unless forced, and publish a change
 * (ItemNeedsAttention / ItemHealthRestored) once per change.
 *
 * ## The rules
 *
 * 1. **Health** is one of: `healthy`; `consent_expiring` (PENDING_EXPIRATION or
 *    PENDING_DISCONNECT, with the date); `needs_user_action` (an error only the user can clear,
 *    by Plaid's classification: ITEM_LOGIN_REQUIRED, ACCESS_NOT_GRANTED, ...); `revoked`
 *    (USER_PERMISSION_REVOKED, USER_ACCOUNT_REVOKED). Worse wins: revoked, then
 *    needs_user_action, then consent_expiring.
 * 2. **Recovery**: LOGIN_REPAIRED clears ITEM_LOGIN_REQUIRED; a refresh Plaid accepts clears
 *    needs_user_action (the login works); a token registered again (the user re-linked the
 *    Item) makes it healthy whatever it was.
 * 3. **Other facts change nothing**: NEW_ACCOUNTS_AVAILABLE, WEBHOOK_UPDATE_ACKNOWLEDGED, an
 *    ERROR the user cannot clear (INSTITUTION_DOWN passes by itself), a refresh error of that kind.
 * 4. **Order**: webhooks and refresh answers come from different places; a fact older than the
 *    one the health rests on changes nothing, so a late ERROR cannot undo a LOGIN_REPAIRED.
 * 5. **Changes**: turning to any health but healthy (or to another reason or date) is
 *    `needs_attention`; turning healthy from anything else is `restored`; anything else, none.
 * 6. **A refresh is refused** (no Plaid call) while the Item needs its user or is revoked; an
 *    expiring consent still lets refreshes through.
 */
import { classifyPlaidError } from '@cashflow/plaid-client';

export type Health =
  | { readonly status: 'healthy' }
  | { readonly status: 'consent_expiring'; readonly expiresAt: string }
  | { readonly status: 'needs_user_action'; readonly reason: string }
  | {
      readonly status: 'revoked';
      readonly reason: 'USER_PERMISSION_REVOKED' | 'USER_ACCOUNT_REVOKED';
    };

export interface ItemHealth {
  readonly itemId: string;
  readonly health: Health;
  /** When the fact the health rests on happened (ISO); null before any. */
  readonly asOf: string | null;
}

/** A Plaid error as far as health goes. */
export interface ErrorFacts {
  readonly error_type: string;
  readonly error_code: string;
}

export type HealthFact =
  /** A verified Item webhook (webhook_type ITEM) as Plaid sent it. */
  | {
      readonly kind: 'item_webhook';
      readonly code: string;
      readonly error: ErrorFacts | null;
      /** consent_expiration_time (PENDING_EXPIRATION) or disconnect_time (PENDING_DISCONNECT). */
      readonly until?: string | null;
      readonly at: string;
    }
  | { readonly kind: 'refresh_failed'; readonly error: ErrorFacts; readonly at: string }
  | { readonly kind: 'refresh_accepted'; readonly at: string }
  | { readonly kind: 'token_registered'; readonly at: string };

export type HealthChange = 'needs_attention' | 'restored';

export const HEALTHY: Health = { status: 'healthy' };

export function initialItemHealth(itemId: string): ItemHealth {
  return { itemId, health: HEALTHY, asOf: null };
}

const SEVERITY: Record<Health['status'], number> = {
  healthy: 0,
  consent_expiring: 1,
  needs_user_action: 2,
  revoked: 3,
};

/** Rules 1 to 5: the Item's health after `fact`, and the change to publish, if any. */
export function decide(
  state: ItemHealth,
  fact: HealthFact,
): { readonly state: ItemHealth; readonly change: HealthChange | null } {
  // Rule 4.
  if (state.asOf !== null && Date.parse(fact.at) < Date.parse(state.asOf)) {
    return { state, change: null };
  }
  const next = healthAfter(state.health, fact);
  if (next === undefined || same(next, state.health)) return { state, change: null };
  return {
    state: { ...state, health: next, asOf: fact.at },
    change: next.status === 'healthy' ? 'restored' : 'needs_attention',
  };
}

/** Rule 6: why a refresh of the Item is refused without a Plaid call; null when it is not. */
export function refusal(state: ItemHealth): { readonly code: string } | null {
  const health = state.health;
  if (health.status === 'needs_user_action' || health.status === 'revoked') {
    return { code: health.reason };
  }
  return null;
}

/** The health `fact` leads to, or undefined when it changes nothing. */
function healthAfter(current: Health, fact: HealthFact): Health | undefined {
  switch (fact.kind) {
    case 'token_registered':
      return HEALTHY;
    case 'refresh_accepted':
      return current.status === 'needs_user_action' ? HEALTHY : undefined;
    case 'refresh_failed':
      return userError(fact.error) ? worst(current, needsUser(fact.error)) : undefined;
    case 'item_webhook':
      return afterWebhook(current, fact);
    default:
      return assertNever(fact);
  }
}

function afterWebhook(
  current: Health,
  fact: Extract<HealthFact, { kind: 'item_webhook' }>,
): Health | undefined {
  switch (fact.code) {
    case 'ERROR':
      return fact.error && userError(fact.error)
        ? worst(current, needsUser(fact.error))
        : undefined;
    case 'PENDING_EXPIRATION':
    case 'PENDING_DISCONNECT':
      return fact.until
        ? worst(current, { status: 'consent_expiring', expiresAt: iso(fact.until) })
        : undefined;
    case 'USER_PERMISSION_REVOKED':
    case 'USER_ACCOUNT_REVOKED':
      return { status: 'revoked', reason: fact.code };
    case 'LOGIN_REPAIRED':
      return current.status === 'needs_user_action' && current.reason === 'ITEM_LOGIN_REQUIRED'
        ? HEALTHY
        : undefined;
    default:
      // NEW_ACCOUNTS_AVAILABLE, WEBHOOK_UPDATE_ACKNOWLEDGED and codes Plaid adds later.
      return undefined;
  }
}

/** Whether only the Item's user can clear the error: the one classification table decides. */
function userError(error: ErrorFacts): boolean {
  return classifyPlaidError({
    kind: 'plaid',
    httpStatus: 400,
    error: { ...error, error_message: '' },
  }).needsUserAction;
}

function needsUser(error: ErrorFacts): Health {
  return { status: 'needs_user_action', reason: error.error_code };
}

/**
 * Rule 1: the worse of the two; between two of the same kind, the newer (a later expiry date,
 * another error code).
 */
function worst(current: Health, candidate: Health): Health {
  return SEVERITY[candidate.status] >= SEVERITY[current.status] ? candidate : current;
}

function same(a: Health, b: Health): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

function iso(time: string): string {
  return new Date(time).toISOString();
}

function assertNever(value: never): never {
  throw new Error(`unhandled fact: ${JSON.stringify(value)}`);
}
