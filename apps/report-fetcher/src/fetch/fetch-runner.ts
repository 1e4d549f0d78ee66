import { TokenDecryptError, type TokenVault } from '@cashflow/access-tokens';
import type { FetchFailure } from '@cashflow/contracts';
import { inSpan, type Logger } from '@cashflow/observability';
import { contextOf, linksTo } from '@cashflow/kafka';
import { ROOT_CONTEXT, context } from '@opentelemetry/api';
import {
  backoffDelay,
  backoffFor,
  classifyPlaidError,
  type BackoffPolicy,
} from '@cashflow/plaid-client';
import { randomUUID } from 'node:crypto';
import type { DataSource } from 'typeorm';
import { fetchFailureOf, fetcherFailure } from './fetch-failures';
import type { FetchMetrics } from './fetch-metrics';
import type { FetchPublisher } from './fetch-publisher';
import type { FetchClaim, FetchStateStore } from './fetch-state-store';
import type { FetchPlan, PollAnswer, PollPlan } from './item-fetches';
import { recordGivenUp, type ReportFetch } from './report-fetch';
import type { ReportPoll } from './report-poll';

export interface RunnerSettings {
  /** Fetches under way at once. */
  readonly concurrency: number;
  readonly pollMs: number;
  readonly maxAttempts: number;
  readonly backoff: BackoffPolicy;
  /** How long a claim lasts unless renewed (every third of it while the fetch runs). */
  readonly leaseMs: number;
}

/**
 * What one claimed run came to, for logs, metrics and tests: a fetch stored, waiting to try
 * again, given up; a poll that found the report, gave up waiting (overdue) or waits on; the claim
 * lost; or only what an earlier run left published.
 */
export type RunOutcome =
  'stored' | 'retry' | 'given_up' | 'found' | 'overdue' | 'waiting' | 'lost' | 'published_only';

/**
 * Makes the fetches that are due: claims Items (one fetch per Item across processes), keeps the
 * claims alive while their fetches run, publishes what earlier runs left, makes the fetch, and
 * either stores it, waits durably to try again (Plaid's retryable errors: the Item is due again
 * later and no other Item waits for it), or gives it up with ReportFetchFailed.
 */
export class FetchRunner {
  private readonly running = new Set<Promise<void>>();
  private timer: NodeJS.Timeout | undefined;
  private ticking = false;
  private again = false;
  private stopping = false;
  /** Called after each run (tests and metrics). */
  onRun: (itemId: string, outcome: RunOutcome) => void = () => undefined;

  constructor(
    private readonly db: DataSource,
    private readonly states: FetchStateStore,
    private readonly fetch: ReportFetch,
    private readonly poll: ReportPoll,
    private readonly publisher: FetchPublisher,
    private readonly vault: TokenVault,
    private readonly settings: RunnerSettings,
    private readonly now: () => number,
    private readonly logger: Logger,
    private readonly metrics?: FetchMetrics,
  ) {}

  start(): void {
    this.timer = setInterval(() => this.wake(), this.settings.pollMs);
    this.timer.unref?.();
    this.wake();
  }

  /** Looks for due fetches now (a report just made one due). */
  wake(): void {
    if (this.stopping) return;
    if (this.ticking) {
      this.again = true;
      return;
    }
    this.ticking = true;
    // Woken from a consumed event's span: the runs it starts belong to no one event's trace.
    void context
      .with(ROOT_CONTEXT, () => this.tick())
      .finally(() => {
        this.ticking = false;
        if (this.again) {
          this.again = false;
          this.wake();
        }
      });
  }

  /** Stops claiming; waits up to `graceMs` for fetches under way (their claims expire otherwise). */
  async stop(graceMs: number): Promise<void> {
    this.stopping = true;
    clearInterval(this.timer);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.allSettled([...this.running]),
      new Promise((resolve) => {
        timer = setTimeout(resolve, graceMs);
      }),
    ]);
    clearTimeout(timer);
  }

  get inFlight(): number {
    return this.running.size;
  }

  private async tick(): Promise<void> {
    const free = this.settings.concurrency - this.running.size;
    if (free <= 0) return;
    let claims: FetchClaim[];
    try {
      claims = await this.states.claimDue(free, this.settings.leaseMs, this.now());
    } catch (error) {
      this.logger.warn({ err: error }, 'looking for due fetches failed; trying again');
      return;
    }
    for (const claim of claims) {
      const run = this.run(claim).finally(() => {
        this.running.delete(run);
        this.wake();
      });
      this.running.add(run);
    }
  }

  private async run(claim: FetchClaim): Promise<void> {
    const keeper = setInterval(() => {
      this.states.renew(claim, this.settings.leaseMs, this.now()).then(
        (held) => {
          if (!held) this.logger.warn({ item_id: claim.itemId }, 'fetch claim taken over');
        },
        (error: unknown) => this.logger.warn({ err: error }, 'renewing a fetch claim failed'),
      );
    }, this.settings.leaseMs / 3);
    keeper.unref?.();
    // Renewing is also how a run learns it still holds the claim before each changelog batch.
    const stillHeld = () => this.states.renew(claim, this.settings.leaseMs, this.now());
    try {
      await this.publisher.publishPending(claim.itemId, stillHeld);
      const outcome = claim.plan
        ? await this.make(claim, claim.plan)
        : claim.poll
          ? await this.pollFor(claim, claim.poll)
          : 'published_only';
      this.logger.debug({ item_id: claim.itemId, outcome }, 'fetch run made');
      await this.publisher.publishPending(claim.itemId, stillHeld);
      this.logger.debug({ item_id: claim.itemId, outcome }, 'fetch run published');
      await this.states.release(claim);
      this.metrics?.ran(outcome);
      this.onRun(claim.itemId, outcome);
    } catch (error) {
      // PostgreSQL or Kafka failed: the claim runs out and the Item is taken up again.
      this.logger.warn(
        { err: error, item_id: claim.itemId },
        'fetch run failed; the Item is fetched again once its claim expires',
      );
    } finally {
      clearInterval(keeper);
    }
  }

  /**
   * Rule 9: asks Plaid whether an overdue refresh's data is there, in a trace of its own linked
   * to the refreshes it asks for.
   */
  private pollFor(claim: FetchClaim, plan: PollPlan): Promise<RunOutcome> {
    return inSpan(
      'poll report',
      {
        parent: ROOT_CONTEXT,
        links: linksTo(plan.acceptances),
        attributes: {
          'cashflow.item_id': claim.itemId,
          'cashflow.poll.requests': plan.acceptances.length,
        },
      },
      async (span) => {
        const outcome = await this.pollOnce(claim, plan);
        span.setAttribute('cashflow.poll.outcome', outcome);
        return outcome;
      },
    );
  }

  private async pollOnce(claim: FetchClaim, plan: PollPlan): Promise<RunOutcome> {
    let answer: PollAnswer;
    try {
      const accessToken = await this.vault.reveal(claim.itemId);
      answer =
        accessToken === undefined
          ? {
              kind: 'failed',
              error: fetcherFailure(
                'UNKNOWN_ITEM',
                `no access token is registered for item ${claim.itemId}`,
              ),
              permanent: true,
            }
          : await this.poll.ask(accessToken, plan);
    } catch (error) {
      if (!(error instanceof TokenDecryptError)) throw error;
      answer = {
        kind: 'failed',
        error: fetcherFailure(
          'TOKEN_UNREADABLE',
          `the access token of item ${claim.itemId} cannot be decrypted with the configured TOKEN_ENCRYPTION_KEYS (${error.message})`,
        ),
        permanent: true,
      };
    }
    const outcome = await this.poll.record(claim, plan, answer);
    this.logger.info(
      {
        item_id: claim.itemId,
        refresh_request_ids: plan.acceptances.map((a) => a.requestId),
        outcome,
        ...(answer.kind === 'answered'
          ? { last_successful_update_time: answer.lastSuccessfulUpdateTime }
          : { error_code: answer.error.error_code }),
      },
      'polled for an overdue report',
    );
    return outcome;
  }

  /**
   * A fetch, in a span of the report's trace (the ReportReady it follows) linked to the traces
   * of the refreshes whose data it brings; its Plaid pages are child spans.
   */
  private make(claim: FetchClaim, plan: FetchPlan): Promise<RunOutcome> {
    return inSpan(
      'fetch report',
      {
        parent: contextOf(plan.report),
        links: linksTo(claim.acceptanceTraces ?? []),
        attributes: {
          'cashflow.item_id': claim.itemId,
          'cashflow.report_event_id': plan.report.eventId,
          'cashflow.fetch.attempts': claim.attempts,
          'cashflow.fetch.requests': plan.requestIds.length,
        },
      },
      async (span) => {
        const outcome = await this.makeFetch(claim, plan);
        span.setAttribute('cashflow.fetch.outcome', outcome);
        return outcome;
      },
    );
  }

  private async makeFetch(claim: FetchClaim, plan: FetchPlan): Promise<RunOutcome> {
    const fetchId = randomUUID();
    const startedAt = this.now();
    let accessToken: string | undefined;
    try {
      accessToken = await this.vault.reveal(claim.itemId);
    } catch (error) {
      if (!(error instanceof TokenDecryptError)) throw error;
      return this.giveUp(claim, plan, fetchId, startedAt, {
        error: fetcherFailure(
          'TOKEN_UNREADABLE',
          `the access token of item ${claim.itemId} cannot be decrypted with the configured TOKEN_ENCRYPTION_KEYS (${error.message}); restore its key or register the token again`,
        ),
        retryable: false,
      });
    }
    if (accessToken === undefined) {
      return this.giveUp(claim, plan, fetchId, startedAt, {
        error: fetcherFailure(
          'UNKNOWN_ITEM',
          `no access token is registered for item ${claim.itemId}`,
        ),
        retryable: false,
      });
    }
    const result = await this.fetch.attempt(claim, plan, accessToken, fetchId);
    switch (result.kind) {
      case 'stored':
        this.metrics?.stored(result.event.data);
        this.logger.info(
          {
            item_id: claim.itemId,
            fetch_id: fetchId,
            transactions: result.event.data.transactions,
            added: result.event.data.added,
            modified: result.event.data.modified,
            removed: result.event.data.removed,
          },
          'report fetched',
        );
        return 'stored';
      case 'lost':
        return 'lost';
      case 'kept_changing':
        return this.failedAttempt(claim, plan, fetchId, startedAt, {
          error: fetcherFailure(
            'DATA_KEPT_CHANGING',
            `the report changed during pagination ${result.restarts} times in a row`,
          ),
          retry: 'soon',
        });
      case 'plaid_failed':
        return this.failedAttempt(claim, plan, fetchId, startedAt, {
          error: fetchFailureOf(result.error),
          retry: classifyPlaidError(result.error).retry,
        });
    }
  }

  /** A retryable failure waits (durably) for its backoff; the last attempt or a permanent one gives up. */
  private async failedAttempt(
    claim: FetchClaim,
    plan: FetchPlan,
    fetchId: string,
    startedAt: number,
    failure: { readonly error: FetchFailure; readonly retry: 'never' | 'soon' | 'later' },
  ): Promise<RunOutcome> {
    const attempts = claim.attempts + 1;
    if (failure.retry === 'never' || attempts >= this.settings.maxAttempts) {
      return this.giveUp(claim, plan, fetchId, startedAt, {
        error: failure.error,
        retryable: failure.retry !== 'never',
      });
    }
    const delay = backoffDelay(backoffFor(failure.retry, this.settings.backoff), attempts);
    this.logger.info(
      { item_id: claim.itemId, error_code: failure.error.error_code, attempts, delay_ms: delay },
      'fetch failed for now; trying again later',
    );
    const held = await this.states.applyClaimed(
      claim,
      { kind: 'failed', retryAt: this.now() + delay },
      this.now(),
    );
    return held ? 'retry' : 'lost';
  }

  private async giveUp(
    claim: FetchClaim,
    plan: FetchPlan,
    fetchId: string,
    startedAt: number,
    failure: { readonly error: FetchFailure; readonly retryable: boolean },
  ): Promise<RunOutcome> {
    this.logger.warn(
      { item_id: claim.itemId, error_code: failure.error.error_code },
      'fetch given up',
    );
    const event = await recordGivenUp(
      this.db,
      this.states,
      claim,
      plan,
      fetchId,
      failure,
      startedAt,
      this.now(),
    );
    return event ? 'given_up' : 'lost';
  }
}
