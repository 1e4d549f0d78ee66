import {
  FETCHER_SOURCE,
  createEvent,
  type ReportOverdue,
  type ReportReady,
} from '@cashflow/contracts';
import { classifyPlaidError, type PlaidCallBudget, type PlaidClient } from '@cashflow/plaid-client';
import { randomUUID } from 'node:crypto';
import type { DataSource } from 'typeorm';
import { fetchFailureOf } from './fetch-failures';
import type { FetchClaim, FetchStateStore } from './fetch-state-store';
import {
  decidePoll,
  type PollAnswer,
  type PollDecision,
  type PollPlan,
  type PollPolicy,
} from './item-fetches';

/** How a poll ended: a report found, acceptances given up, still waiting, or the claim lost. */
export type PollOutcome = 'found' | 'overdue' | 'waiting' | 'lost';

/**
 * Rule 9 of item-fetches.ts made real: asks Plaid whether an overdue refresh's data is there
 * (/cashflow_report/get, count 1, within the client's Plaid budget), then, while the claim is
 * held, writes the Item's next state and what the poll decided to publish (report_polls: a
 * ReportReady found by polling, a ReportOverdue) in one transaction. FetchPublisher puts them on
 * Kafka; the fetch of a found report is made like any other.
 */
export class ReportPoll {
  constructor(
    private readonly db: DataSource,
    private readonly states: FetchStateStore,
    private readonly plaid: PlaidClient,
    private readonly limiter: PlaidCallBudget,
    private readonly policy: PollPolicy,
    private readonly now: () => number,
  ) {}

  /** What Plaid says of the Item's data now. */
  async ask(accessToken: string, plan: PollPlan): Promise<PollAnswer> {
    await this.limiter.acquire();
    const page = await this.plaid.getCashflowReport(accessToken, {
      daysRequested: plan.days,
      count: 1,
      cursor: '',
    });
    if (page.ok) {
      return {
        kind: 'answered',
        lastSuccessfulUpdateTime: page.value.last_successful_update_time,
        plaidRequestId: page.value.request_id,
      };
    }
    return {
      kind: 'failed',
      error: fetchFailureOf(page.error),
      permanent: classifyPlaidError(page.error).retry === 'never',
    };
  }

  /** Decides on the answer against the Item's state now and stores the decision. */
  async record(claim: FetchClaim, plan: PollPlan, answer: PollAnswer): Promise<PollOutcome> {
    const pollId = randomUUID();
    return this.db.transaction(async (tx) => {
      const state = await this.states.lockClaimed(tx, claim);
      if (!state) return 'lost';
      const now = this.now();
      const decision = decidePoll(state, plan, answer, now, this.policy, pollId);
      await this.states.writeClaimed(tx, decision.state);
      const at = new Date(now).toISOString();
      if (decision.found) {
        const event = foundEvent(claim.itemId, pollId, decision.found, at);
        await insertPoll(tx, {
          pollId,
          itemId: claim.itemId,
          outcome: 'found',
          requestIds: decision.found.requestIds,
          polls: decision.polls,
          plaidRequestId: decision.found.plaidRequestId,
          lastSuccessfulUpdateTime: decision.found.lastSuccessfulUpdateTime,
          errorCode: null,
          at,
          event,
        });
      }
      if (decision.overdue) {
        const overdueId = randomUUID();
        const event = overdueEvent(claim.itemId, overdueId, decision.overdue, at);
        await insertPoll(tx, {
          pollId: overdueId,
          itemId: claim.itemId,
          outcome: 'overdue',
          requestIds: event.data.refresh_request_ids,
          polls: decision.overdue.polls,
          plaidRequestId: answer.kind === 'answered' ? answer.plaidRequestId : null,
          lastSuccessfulUpdateTime: decision.overdue.lastSuccessfulUpdateTime,
          errorCode: decision.overdue.lastError?.error_code ?? null,
          at,
          event,
        });
      }
      return decision.found ? 'found' : decision.overdue ? 'overdue' : 'waiting';
    });
  }
}

/**
 * The ReportReady a poll found. Its received_at is the data's last_successful_update_time, so
 * it answers, by the one rule every consumer uses, the acceptances whose data it holds.
 */
function foundEvent(
  itemId: string,
  pollId: string,
  found: NonNullable<PollDecision['found']>,
  at: string,
): ReportReady {
  const requestIds = [...found.requestIds];
  return createEvent(
    'ReportReady',
    {
      item_id: itemId,
      webhook_type: 'CASHFLOW_REPORT',
      webhook_code: 'CASHFLOW_REPORT_READY',
      environment: null,
      received_at: found.report.receivedAt,
      delivery_id: `poll:${pollId}`,
      webhook: {},
      found_by: 'polling',
      poll: {
        poll_id: pollId,
        plaid_request_id: found.plaidRequestId,
        last_successful_update_time: found.lastSuccessfulUpdateTime,
        refresh_request_ids: requestIds,
        polled_at: at,
      },
    },
    {
      id: pollId,
      source: FETCHER_SOURCE,
      time: at,
      correlationId: requestIds[0],
      causationId: requestIds[0],
    },
  );
}

function overdueEvent(
  itemId: string,
  id: string,
  overdue: NonNullable<PollDecision['overdue']>,
  at: string,
): ReportOverdue {
  const requestIds = overdue.acceptances.map((a) => a.requestId);
  const acceptedAt = overdue.acceptances.reduce(
    (earliest, a) => (Date.parse(a.acceptedAt) < Date.parse(earliest) ? a.acceptedAt : earliest),
    overdue.acceptances[0]!.acceptedAt,
  );
  return createEvent(
    'ReportOverdue',
    {
      item_id: itemId,
      refresh_request_ids: requestIds,
      accepted_at: acceptedAt,
      polls: overdue.polls,
      last_successful_update_time:
        overdue.lastSuccessfulUpdateTime === null
          ? null
          : new Date(overdue.lastSuccessfulUpdateTime).toISOString(),
      last_error: overdue.lastError,
      overdue_at: at,
    },
    {
      id,
      source: FETCHER_SOURCE,
      time: at,
      correlationId: requestIds[0],
      causationId: requestIds[0],
    },
  );
}

async function insertPoll(
  tx: { query(sql: string, parameters?: unknown[]): Promise<unknown> },
  row: {
    readonly pollId: string;
    readonly itemId: string;
    readonly outcome: 'found' | 'overdue';
    readonly requestIds: readonly string[];
    readonly polls: number;
    readonly plaidRequestId: string | null;
    readonly lastSuccessfulUpdateTime: string | null;
    readonly errorCode: string | null;
    readonly at: string;
    readonly event: ReportReady | ReportOverdue;
  },
): Promise<void> {
  await tx.query(
    `INSERT INTO report_polls
       (poll_id, item_id, outcome, refresh_request_ids, polls, plaid_request_id,
        last_successful_update_time, error_code, finished_at, event)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
    [
      row.pollId,
      row.itemId,
      row.outcome,
      row.requestIds,
      row.polls,
      row.plaidRequestId,
      row.lastSuccessfulUpdateTime,
      row.errorCode,
      row.at,
      row.event,
    ],
  );
}
