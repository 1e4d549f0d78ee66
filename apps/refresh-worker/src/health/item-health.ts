/**
 * An Item's health, pure: what Plaid's Item webhooks and the answers Plaid gave our refreshes
 * say about whether the Item can be refreshed without its user. No I/O and no clock: each fact
 * carries when it happened.
 *
 * The worker folds the Item webhooks of the plaid-webhooks topic, its own refresh outcomes and
 * the reports Plaid failed into this state per Item (health-store.ts), refuses a refresh of an
 * Item that needs its user without a Plaid call unless forced (refresh.service.ts), and
 * publishes each change once (ItemNeedsAttention / ItemHealthRestored).
 *
 * ## The rules
 *
 * 1. **Order does not matter.** Facts come from three topics read independently, by several
 *    replicas, sometimes twice and years late (a consumer catching up). The state keeps, per
 *    kind of fact, only the latest one by the time it happened; health is a function of those,
 *    so any order of the same facts gives the same health, and a fact read twice changes nothing.
 * 2. **Bad facts.** An error only the user can clear, by Plaid's classification
 *    (ITEM_LOGIN_REQUIRED, ACCESS_NOT_GRANTED, ...), in an ERROR webhook, a refresh Plaid refused,
 *    or a report Plaid failed: `needs_user_action` with that code. USER_PERMISSION_REVOKED or
 *    USER_ACCOUNT_REVOKED: `revoked`. PENDING_EXPIRATION or PENDING_DISCONNECT with its date:
 *    `consent_expiring`.
 * 3. **Good facts** clear what happened before them (a tie goes to the good fact):
 *    - a refresh Plaid accepted clears needs_user_action and revoked (Plaid had the login and the
 *      consent then), and an expiring consent once it is after the expiry date (renewed);
 *    - LOGIN_REPAIRED clears ITEM_LOGIN_REQUIRED;
 *    - the Item's access token registered again (the user re-linked it) clears everything.
 * 4. **Health** is the worst of what is not cleared: revoked, then needs_user_action, then
 *    consent_expiring; healthy when none is left. Other facts (NEW_ACCOUNTS_AVAILABLE,
 *    WEBHOOK_UPDATE_ACKNOWLEDGED, errors that pass by themselves such as INSTITUTION_DOWN, codes
 *    Plaid adds later) change nothing.
 * 5. **Changes**: health turning into anything but healthy (or to another reason or date) is
 *    `needs_attention`; turning healthy is `restored`; each change gets the Item's next
 *    `sequence` number (1, 2, ...), so consumers keep the highest.
 * 6. **A refresh is refused** (no Plaid call) while the Item needs its user or is revoked; an
 *    expiring consent still lets refreshes through.
 */
import { classifyPlaidError } from '@cashflow/plaid-client';

export type Revocation = 'USER_PERMISSION_REVOKED' | 'USER_ACCOUNT_REVOKED';

export type Health =
  | { readonly status: 'healthy' }
  | { readonly status: 'consent_expiring'; readonly expiresAt: string }
  | { readonly status: 'needs_user_action'; readonly reason: string }
  | { readonly status: 'revoked'; readonly reason: Revocation };

/** Rule 1: the latest fact of each kind (times are ISO strings). */
export interface HealthFacts {
  /** The latest error only the user can clear. */
  readonly userError: { readonly at: string; readonly code: string } | null;
  readonly revoked: { readonly at: string; readonly code: Revocation } | null;
  readonly expiring: { readonly at: string; readonly until: string } | null;
  readonly acceptedAt: string | null;
  readonly loginRepairedAt: string | null;
  readonly tokenRegisteredAt: string | null;
}

export interface ItemHealth {
  readonly itemId: string;
  readonly facts: HealthFacts;
  /** Changes published so far: the last change's sequence number. */
  readonly sequence: number;
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
  /** Plaid refused a refresh, or failed its report (CASHFLOW_REPORT_READY with an error). */
  | { readonly kind: 'refresh_failed'; readonly error: ErrorFacts; readonly at: string }
  | { readonly kind: 'report_failed'; readonly error: ErrorFacts; readonly at: string }
  | { readonly kind: 'refresh_accepted'; readonly at: string }
  | { readonly kind: 'token_registered'; readonly at: string };

export type HealthChange = 'needs_attention' | 'restored';

export const HEALTHY: Health = { status: 'healthy' };

const NO_FACTS: HealthFacts = {
  userError: null,
  revoked: null,
  expiring: null,
  acceptedAt: null,
  loginRepairedAt: null,
  tokenRegisteredAt: null,
};

export function initialItemHealth(itemId: string): ItemHealth {
  return { itemId, facts: NO_FACTS, sequence: 0 };
}

/** Rules 2 to 4: the Item's health now. */
export function healthOf(state: ItemHealth): Health {
  const f = state.facts;
  const cleared = (at: string, ...by: (string | null)[]) =>
    by.some((good) => good !== null && !isBefore(good, at));
  if (f.revoked && !cleared(f.revoked.at, f.acceptedAt, f.tokenRegisteredAt)) {
    return { status: 'revoked', reason: f.revoked.code };
  }
  if (
    f.userError &&
    !cleared(
      f.userError.at,
      f.acceptedAt,
      f.tokenRegisteredAt,
      f.userError.code === 'ITEM_LOGIN_REQUIRED' ? f.loginRepairedAt : null,
    )
  ) {
    return { status: 'needs_user_action', reason: f.userError.code };
  }
  if (
    f.expiring &&
    !cleared(f.expiring.at, f.tokenRegisteredAt) &&
    !(f.acceptedAt !== null && isBefore(f.expiring.until, f.acceptedAt))
  ) {
    return { status: 'consent_expiring', expiresAt: f.expiring.until };
  }
  return HEALTHY;
}

/** Rules 1 and 5: the state after `fact`, and the change to publish, if any. */
export function decide(
  state: ItemHealth,
  fact: HealthFact,
): { readonly state: ItemHealth; readonly change: HealthChange | null } {
  const facts = merge(state.facts, fact);
  if (facts === state.facts) return { state, change: null };
  const before = healthOf(state);
  const next = { ...state, facts };
  const after = healthOf(next);
  if (sameHealth(before, after)) return { state: next, change: null };
  return {
    state: { ...next, sequence: state.sequence + 1 },
    change: after.status === 'healthy' ? 'restored' : 'needs_attention',
  };
}

/** Rule 6: why a refresh of the Item is refused without a Plaid call; null when it is not. */
export function refusal(state: ItemHealth): { readonly code: string } | null {
  const health = healthOf(state);
  if (health.status === 'needs_user_action' || health.status === 'revoked') {
    return { code: health.reason };
  }
  return null;
}

export function sameHealth(a: Health, b: Health): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** Rule 1: `facts` with `fact` in it, the same object when it is not newer than what is kept. */
function merge(facts: HealthFacts, fact: HealthFact): HealthFacts {
  switch (fact.kind) {
    case 'token_registered':
      return latestTime(facts, 'tokenRegisteredAt', fact.at);
    case 'refresh_accepted':
      return latestTime(facts, 'acceptedAt', fact.at);
    case 'refresh_failed':
    case 'report_failed':
      return userError(fact.error) ? withUserError(facts, fact.at, fact.error.error_code) : facts;
    case 'item_webhook':
      return mergeWebhook(facts, fact);
    default:
      return assertNever(fact);
  }
}

function mergeWebhook(
  facts: HealthFacts,
  fact: Extract<HealthFact, { kind: 'item_webhook' }>,
): HealthFacts {
  switch (fact.code) {
    case 'ERROR':
      return fact.error && userError(fact.error)
        ? withUserError(facts, fact.at, fact.error.error_code)
        : facts;
    case 'PENDING_EXPIRATION':
    case 'PENDING_DISCONNECT': {
      if (!fact.until) return facts;
      const candidate = { at: iso(fact.at), until: iso(fact.until) };
      return newer(candidate, facts.expiring, (e) => e.until)
        ? { ...facts, expiring: candidate }
        : facts;
    }
    case 'USER_PERMISSION_REVOKED':
    case 'USER_ACCOUNT_REVOKED': {
      const candidate = { at: iso(fact.at), code: fact.code };
      return newer(candidate, facts.revoked, (r) => r.code)
        ? { ...facts, revoked: candidate }
        : facts;
    }
    case 'LOGIN_REPAIRED':
      return latestTime(facts, 'loginRepairedAt', fact.at);
    default:
      // NEW_ACCOUNTS_AVAILABLE, WEBHOOK_UPDATE_ACKNOWLEDGED and codes Plaid adds later.
      return facts;
  }
}

function withUserError(facts: HealthFacts, at: string, code: string): HealthFacts {
  const candidate = { at: iso(at), code };
  return newer(candidate, facts.userError, (e) => e.code)
    ? { ...facts, userError: candidate }
    : facts;
}

function latestTime(
  facts: HealthFacts,
  key: 'acceptedAt' | 'loginRepairedAt' | 'tokenRegisteredAt',
  at: string,
): HealthFacts {
  const current = facts[key];
  return current === null || isBefore(current, at) ? { ...facts, [key]: iso(at) } : facts;
}

/**
 * Whether `candidate` is to be kept instead of `current`: later, or at the same instant with a
 * greater tie-breaker (so two facts of one instant give one answer in either order).
 */
function newer<T extends { readonly at: string }>(
  candidate: T,
  current: T | null,
  tieBreaker: (fact: T) => string,
): boolean {
  if (current === null) return true;
  const diff = Date.parse(candidate.at) - Date.parse(current.at);
  return diff !== 0 ? diff > 0 : tieBreaker(candidate) > tieBreaker(current);
}

/** Whether only the Item's user can clear the error: the one classification table decides. */
function userError(error: ErrorFacts): boolean {
  return classifyPlaidError({
    kind: 'plaid',
    httpStatus: 400,
    error: { ...error, error_message: '' },
  }).needsUserAction;
}

function isBefore(a: string, b: string): boolean {
  return Date.parse(a) < Date.parse(b);
}

function iso(time: string): string {
  return new Date(time).toISOString();
}

function assertNever(value: never): never {
  throw new Error(`unhandled fact: ${JSON.stringify(value)}`);
}
