import fc from 'fast-check';
import {
  HEALTHY,
  decide,
  healthOf,
  initialItemHealth,
  refusal,
  type HealthFact,
  type ItemHealth,
} from './item-health';

const T0 = Date.parse('2026-12-01T10:00:00.000Z');
const at = (seconds: number) => new Date(T0 + seconds * 1000).toISOString();

const webhook = (
  code: string,
  seconds: number,
  extra: { error?: { error_type: string; error_code: string }; until?: string } = {},
): HealthFact => ({
  kind: 'item_webhook',
  code,
  error: extra.error ?? null,
  until: extra.until ?? null,
  at: at(seconds),
});
const loginRequired = { error_type: 'ITEM_ERROR', error_code: 'ITEM_LOGIN_REQUIRED' };
const institutionDown = { error_type: 'INSTITUTION_ERROR', error_code: 'INSTITUTION_DOWN' };

/** Applies facts in order; returns the state and every change published. */
function given(...facts: HealthFact[]): { state: ItemHealth; changes: string[] } {
  let state = initialItemHealth('item-1');
  const changes: string[] = [];
  for (const fact of facts) {
    const decided = decide(state, fact);
    state = decided.state;
    if (decided.change) changes.push(decided.change);
  }
  return { state, changes };
}

describe('Item health (item-health)', () => {
  it('given a healthy Item, when ERROR ITEM_LOGIN_REQUIRED comes, then it needs its user and refreshes are refused', () => {
    const { state, changes } = given(webhook('ERROR', 0, { error: loginRequired }));
    expect(healthOf(state)).toEqual({ status: 'needs_user_action', reason: 'ITEM_LOGIN_REQUIRED' });
    expect(changes).toEqual(['needs_attention']);
    expect(refusal(state)).toEqual({ code: 'ITEM_LOGIN_REQUIRED' });
  });

  it('given an Item needing login, when LOGIN_REPAIRED comes, then it is healthy again, once', () => {
    const { state, changes } = given(
      webhook('ERROR', 0, { error: loginRequired }),
      webhook('LOGIN_REPAIRED', 10),
      webhook('LOGIN_REPAIRED', 20),
    );
    expect(healthOf(state)).toEqual(HEALTHY);
    expect(changes).toEqual(['needs_attention', 'restored']);
    expect(refusal(state)).toBeNull();
  });

  it('given an Item needing login, when a refresh fails the same way, then nothing is published again', () => {
    const { changes } = given(webhook('ERROR', 0, { error: loginRequired }), {
      kind: 'refresh_failed',
      error: loginRequired,
      at: at(5),
    });
    expect(changes).toEqual(['needs_attention']);
  });

  it('given a refresh that fails with ITEM_LOGIN_REQUIRED, then the Item needs its user; a refresh Plaid accepts (forced) restores it', () => {
    const failed = given({ kind: 'refresh_failed', error: loginRequired, at: at(0) });
    expect(healthOf(failed.state).status).toBe('needs_user_action');
    const { state, changes } = given(
      { kind: 'refresh_failed', error: loginRequired, at: at(0) },
      { kind: 'refresh_accepted', at: at(30) },
    );
    expect(healthOf(state)).toEqual(HEALTHY);
    expect(changes).toEqual(['needs_attention', 'restored']);
  });

  it('given errors that pass by themselves, then the Item stays healthy', () => {
    const { state, changes } = given(
      webhook('ERROR', 0, { error: institutionDown }),
      { kind: 'refresh_failed', error: institutionDown, at: at(1) },
      webhook('NEW_ACCOUNTS_AVAILABLE', 2),
      webhook('WEBHOOK_UPDATE_ACKNOWLEDGED', 3),
      webhook('SOMETHING_PLAID_ADDS_LATER', 4),
    );
    expect(healthOf(state)).toEqual(HEALTHY);
    expect(changes).toEqual([]);
  });

  it('given PENDING_EXPIRATION, then the consent is expiring with its date and refreshes still go', () => {
    const { state, changes } = given(
      webhook('PENDING_EXPIRATION', 0, { until: '2026-12-08T00:00:00Z' }),
    );
    expect(healthOf(state)).toEqual({
      status: 'consent_expiring',
      expiresAt: '2026-12-08T00:00:00.000Z',
    });
    expect(changes).toEqual(['needs_attention']);
    expect(refusal(state)).toBeNull();
  });

  it('given PENDING_DISCONNECT, then the consent is expiring at the disconnect time', () => {
    const { state } = given(webhook('PENDING_DISCONNECT', 0, { until: '2026-12-09T00:00:00Z' }));
    expect(healthOf(state)).toEqual({
      status: 'consent_expiring',
      expiresAt: '2026-12-09T00:00:00.000Z',
    });
  });

  it('given USER_PERMISSION_REVOKED, then the Item is revoked; LOGIN_REPAIRED does not restore it, an accepted refresh or a token registered again does', () => {
    const revoked = given(
      webhook('USER_PERMISSION_REVOKED', 0),
      webhook('LOGIN_REPAIRED', 5),
      webhook('PENDING_EXPIRATION', 7, { until: '2026-12-08T00:00:00Z' }),
    );
    expect(healthOf(revoked.state)).toEqual({
      status: 'revoked',
      reason: 'USER_PERMISSION_REVOKED',
    });
    expect(refusal(revoked.state)).toEqual({ code: 'USER_PERMISSION_REVOKED' });
    const accepted = given(webhook('USER_PERMISSION_REVOKED', 0), {
      kind: 'refresh_accepted',
      at: at(6),
    });
    expect(healthOf(accepted.state)).toEqual(HEALTHY);
    const { state, changes } = given(webhook('USER_ACCOUNT_REVOKED', 0), {
      kind: 'token_registered',
      at: at(60),
    });
    expect(healthOf(state)).toEqual(HEALTHY);
    expect(changes).toEqual(['needs_attention', 'restored']);
  });

  it('given an expiring consent, when the login breaks, then the worse wins and a later expiry notice does not hide it', () => {
    const { state, changes } = given(
      webhook('PENDING_EXPIRATION', 0, { until: '2026-12-08T00:00:00Z' }),
      webhook('ERROR', 1, { error: loginRequired }),
      webhook('PENDING_EXPIRATION', 2, { until: '2026-12-08T00:00:00Z' }),
    );
    expect(healthOf(state).status).toBe('needs_user_action');
    expect(changes).toEqual(['needs_attention', 'needs_attention']);
  });

  it('given LOGIN_REPAIRED read before an older ERROR, then the older ERROR changes nothing', () => {
    const { state, changes } = given(
      webhook('ERROR', 0, { error: loginRequired }),
      webhook('LOGIN_REPAIRED', 20),
      webhook('ERROR', 10, { error: loginRequired }),
    );
    expect(healthOf(state)).toEqual(HEALTHY);
    expect(changes).toEqual(['needs_attention', 'restored']);
  });

  it('given LOGIN_REPAIRED, when the Item needs its user for another reason, then it still does', () => {
    const { state } = given(
      webhook('ERROR', 0, {
        error: { error_type: 'ITEM_ERROR', error_code: 'ACCESS_NOT_GRANTED' },
      }),
      webhook('LOGIN_REPAIRED', 5),
    );
    expect(healthOf(state)).toEqual({ status: 'needs_user_action', reason: 'ACCESS_NOT_GRANTED' });
  });

  it('given an expiring consent, when the login breaks and is repaired, then the consent is still expiring', () => {
    const { state, changes } = given(
      webhook('PENDING_EXPIRATION', 0, { until: '2026-12-08T00:00:00Z' }),
      webhook('ERROR', 1, { error: loginRequired }),
      webhook('LOGIN_REPAIRED', 2),
    );
    expect(healthOf(state)).toEqual({
      status: 'consent_expiring',
      expiresAt: '2026-12-08T00:00:00.000Z',
    });
    expect(changes).toEqual(['needs_attention', 'needs_attention', 'needs_attention']);
  });

  it('given an expiring consent, an accepted refresh after the expiry date clears it, one before does not', () => {
    const until = at(100);
    const before = given(webhook('PENDING_EXPIRATION', 0, { until }), {
      kind: 'refresh_accepted',
      at: at(50),
    });
    expect(healthOf(before.state).status).toBe('consent_expiring');
    const after = given(webhook('PENDING_EXPIRATION', 0, { until }), {
      kind: 'refresh_accepted',
      at: at(150),
    });
    expect(healthOf(after.state)).toEqual(HEALTHY);
  });

  it('given a report Plaid failed with ITEM_LOGIN_REQUIRED after it accepted the refresh, then the Item needs its user', () => {
    const { state } = given(
      { kind: 'refresh_accepted', at: at(0) },
      { kind: 'report_failed', error: loginRequired, at: at(60) },
    );
    expect(healthOf(state)).toEqual({ status: 'needs_user_action', reason: 'ITEM_LOGIN_REQUIRED' });
  });

  it('given a catch-up that reads the accepted refreshes before the older ERROR, then the Item is healthy', () => {
    const { state, changes } = given(
      { kind: 'refresh_accepted', at: at(100) },
      { kind: 'refresh_accepted', at: at(200) },
      webhook('ERROR', 10, { error: loginRequired }),
    );
    expect(healthOf(state)).toEqual(HEALTHY);
    expect(changes).toEqual([]);
  });

  it('numbers each change, and a fact read twice changes nothing', () => {
    const broke = webhook('ERROR', 0, { error: loginRequired });
    const { state, changes } = given(broke, broke, webhook('LOGIN_REPAIRED', 5), broke);
    expect(changes).toEqual(['needs_attention', 'restored']);
    expect(state.sequence).toBe(2);
  });

  it('reaches the same health whatever order the same facts are read in', () => {
    const facts: HealthFact[] = [
      webhook('ERROR', 0, { error: loginRequired }),
      webhook('ERROR', 3, {
        error: { error_type: 'ITEM_ERROR', error_code: 'ACCESS_NOT_GRANTED' },
      }),
      webhook('PENDING_EXPIRATION', 1, { until: at(500) }),
      webhook('PENDING_DISCONNECT', 4, { until: at(400) }),
      webhook('USER_PERMISSION_REVOKED', 2),
      webhook('LOGIN_REPAIRED', 5),
      webhook('NEW_ACCOUNTS_AVAILABLE', 6),
      { kind: 'refresh_failed', error: loginRequired, at: at(7) },
      { kind: 'report_failed', error: loginRequired, at: at(9) },
      { kind: 'refresh_accepted', at: at(8) },
      { kind: 'refresh_accepted', at: at(450) },
      { kind: 'token_registered', at: at(3) },
    ];
    fc.assert(
      fc.property(
        fc.subarray(facts, { minLength: 1 }),
        fc.infiniteStream(fc.nat()),
        (chosen, randomness) => {
          const shuffled = [...chosen];
          for (let i = shuffled.length - 1; i > 0; i--) {
            const j = randomness.next().value % (i + 1);
            [shuffled[i], shuffled[j]] = [shuffled[j]!, shuffled[i]!];
          }
          // Read twice, in another order: the same health.
          const once = given(...chosen).state;
          const twice = given(...shuffled, ...chosen).state;
          expect(healthOf(twice)).toEqual(healthOf(once));
          expect(twice.facts).toEqual(once.facts);
        },
      ),
      { numRuns: 500 },
    );
  });
});
