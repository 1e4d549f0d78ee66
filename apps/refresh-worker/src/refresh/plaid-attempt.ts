import type { RefreshFailure } from '@cashflow/contracts';
import { TokenDecryptError, type TokenVault } from '@cashflow/access-tokens';
import {
  backoffDelay,
  backoffFor,
  classifyPlaidError,
  type BackoffPolicy,
  type PlaidClient,
} from '@cashflow/plaid-client';
import type { Clock } from './clock';
import { failureOf, workerFailure, type PlaidAnswer } from './outcomes';
import type { RefreshMetrics } from './refresh-metrics';

export interface AttemptSettings {
  readonly maxAttempts: number;
  readonly backoff: BackoffPolicy;
}

/** How one attempt went. */
export type AttemptResult =
  /** `leaving` said not to make the call (nobody left in it, or it is no longer ours). */
  { readonly kind: 'not_made' } | PlaidAnswer;

/** Returns a turn of the client's rate limit unused. */
export type GiveBack = () => void;

/** How one attempt is made, where the service and the retry runner differ. */
export interface AttemptPlan {
  /**
   * Waits for the client's rate limit to let the call go (the retry runner holds its turn
   * before it claims a parked call, so it passes one already taken). Resolves with a function
   * that gives the turn back, for a call that is not made after all.
   */
  readonly turn: () => Promise<GiveBack>;
  /** Just before the call leaves: the days to ask Plaid for, or undefined to not make it. */
  readonly leaving: (now: number) => Promise<{ readonly days: number } | undefined>;
}

/**
 * One Plaid /cashflow_report/refresh attempt for an Item, the same for a first call (the refresh
 * service) and a parked call's retry (the retry runner): the Item's token, the client's rate
 * limit, a last look at who still needs the call, the call, and what Plaid's answer means (an
 * outcome, or when to try again) through the one classification table. The client's rate limit
 * is the plan's `turn`.
 */
export class PlaidAttempt {
  constructor(
    private readonly vault: TokenVault,
    private readonly plaid: PlaidClient,
    private readonly settings: AttemptSettings,
    private readonly clock: Clock,
    private readonly metrics?: RefreshMetrics,
    private readonly random: () => number = Math.random,
  ) {}

  /** `attemptsBefore` counts the calls made for this call already (a retry's earlier attempts). */
  async make(itemId: string, attemptsBefore: number, plan: AttemptPlan): Promise<AttemptResult> {
    const token = await this.accessToken(itemId);
    if (!token.ok) return this.failedBeforeCalling(token.error, attemptsBefore);
    const giveBack = await plan.turn();
    const go = await plan.leaving(this.clock.now()).catch((error: unknown) => {
      giveBack();
      throw error;
    });
    if (!go) {
      giveBack();
      return { kind: 'not_made' };
    }

    const timed = this.metrics?.plaidCall();
    const result = await this.plaid.refreshCashflowReport(token.value, go.days);
    const answeredAt = this.clock.now();
    timed?.(
      result.ok
        ? 'accepted'
        : result.error.kind === 'plaid'
          ? result.error.error.error_code
          : result.error.kind,
    );
    const attempts = attemptsBefore + 1;
    if (result.ok) {
      return {
        kind: 'outcome',
        outcome: { kind: 'accepted', plaidRequestId: result.value.request_id, attempts },
        answeredAt,
      };
    }
    const classification = classifyPlaidError(result.error);
    const failure = failureOf(result.error);
    if (classification.retry !== 'never' && attempts < this.settings.maxAttempts) {
      const delay = backoffDelay(
        backoffFor(classification.retry, this.settings.backoff),
        attempts,
        this.random,
      );
      return { kind: 'retry', attempts, lastError: failure, dueAt: answeredAt + delay };
    }
    return {
      kind: 'outcome',
      outcome: { kind: 'failed', error: failure, retryable: classification.retryable, attempts },
      answeredAt,
    };
  }

  private failedBeforeCalling(error: RefreshFailure, attempts: number): AttemptResult {
    return {
      kind: 'outcome',
      outcome: { kind: 'failed', error, retryable: false, attempts },
      answeredAt: this.clock.now(),
    };
  }

  /**
   * The Item's access token. No token, or one the configured keys cannot open (a key removed
   * too early, a misconfigured replica), is a final answer: retrying the message cannot fix it.
   */
  private async accessToken(
    itemId: string,
  ): Promise<{ ok: true; value: string } | { ok: false; error: RefreshFailure }> {
    try {
      const token = await this.vault.reveal(itemId);
      if (token) return { ok: true, value: token };
      return {
        ok: false,
        error: workerFailure('UNKNOWN_ITEM', `no access token is registered for item ${itemId}`),
      };
    } catch (error) {
      if (!(error instanceof TokenDecryptError)) throw error;
      return {
        ok: false,
        error: workerFailure(
          'TOKEN_UNREADABLE',
          `the access token of item ${itemId} cannot be decrypted with the configured TOKEN_ENCRYPTION_KEYS (${error.message}); restore its key or register the token again`,
        ),
      };
    }
  }
}
