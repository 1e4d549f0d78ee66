import type {
  RefreshAccepted,
  RefreshFailed,
  ReportFailed,
  ReportOverdue,
  ReportReady,
} from '@cashflow/contracts';
import { KafkaHandlerErrors, type TraceFields } from '@cashflow/kafka';
import { Controller, UseFilters } from '@nestjs/common';
import { EventPattern, Payload } from '@nestjs/microservices';
import { FetchStateStore } from './fetch-state-store';
import { FetchRunner } from './fetch-runner';
import type { FetchInput } from './item-fetches';

/**
 * Where the fetcher learns of refreshes and reports (decoded and validated by the Kafka
 * transport): each becomes an input to the Item's state, applied durably before the offset is
 * committed; a fetch it makes due starts at once.
 */
@Controller()
@UseFilters(KafkaHandlerErrors)
export class ReportEventsHandler {
  constructor(
    private readonly states: FetchStateStore,
    private readonly runner: FetchRunner,
  ) {}

  @EventPattern('RefreshAccepted')
  accepted(@Payload() event: RefreshAccepted): Promise<void> {
    return this.apply(event.data.item_id, {
      kind: 'accepted',
      acceptance: {
        requestId: event.data.refresh_request_id,
        days: event.data.days_requested,
        acceptedAt: new Date(event.data.accepted_at).toISOString(),
        ...traceOf(event),
      },
    });
  }

  /** A refresh that failed brings no report: nothing to do. */
  @EventPattern('RefreshFailed')
  failed(@Payload() _event: RefreshFailed): Promise<void> {
    return Promise.resolve();
  }

  @EventPattern('ReportReady')
  ready(@Payload() event: ReportReady): Promise<void> {
    return this.apply(event.data.item_id, {
      kind: 'report_ready',
      report: {
        eventId: event.metadata.id,
        receivedAt: iso(event.data.received_at),
        ...traceOf(event),
      },
    });
  }

  /** The fetcher's own: its state already holds what it says. */
  @EventPattern('ReportOverdue')
  overdue(@Payload() _event: ReportOverdue): Promise<void> {
    return Promise.resolve();
  }

  @EventPattern('ReportFailed')
  reportFailed(@Payload() event: ReportFailed): Promise<void> {
    return this.apply(event.data.item_id, {
      kind: 'report_failed',
      report: { eventId: event.metadata.id, receivedAt: iso(event.data.received_at) },
    });
  }

  private async apply(itemId: string, input: FetchInput): Promise<void> {
    if (await this.states.apply(itemId, input, Date.now())) this.runner.wake();
  }
}

/** The event's trace context, kept with the fetch state so a fetch can join and link it. */
function traceOf(event: ReportReady | RefreshAccepted): TraceFields {
  const { traceparent, tracestate } = event.metadata;
  return {
    ...(traceparent ? { traceparent } : {}),
    ...(traceparent && tracestate ? { tracestate } : {}),
  };
}

function iso(time: string): string {
  return new Date(time).toISOString();
}
