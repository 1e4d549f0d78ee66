import { BearerAuthGuard, LOGGER, PRINCIPAL, type Logger } from '@cashflow/observability';
import {
  BadRequestException,
  Controller,
  Get,
  HttpCode,
  Inject,
  NotFoundException,
  Param,
  Post,
  Req,
  UseGuards,
} from '@nestjs/common';
import type { Request } from 'express';
import { FetchRunner } from '../fetch/fetch-runner';
import { FetchStateStore } from '../fetch/fetch-state-store';
import { latestReport, type ItemFetches } from '../fetch/item-fetches';

/**
 * `report fetch <item>`: fetch the Item's latest report again now (rule 8 of item-fetches), and
 * what the fetcher knows and owes for an Item. Authenticated by bearer token (ADMIN_API_TOKENS).
 */
@Controller('items/:itemId/report-fetch')
@UseGuards(BearerAuthGuard)
export class ReportFetchController {
  constructor(
    private readonly states: FetchStateStore,
    private readonly runner: FetchRunner,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  @Post()
  @HttpCode(202)
  async fetchAgain(
    @Param('itemId') itemId: string,
    @Req() req: Request & { [PRINCIPAL]?: string },
  ) {
    const state = await this.states.read(checked(itemId));
    const report = state ? latestReport(state) : null;
    if (!state || !report) throw noReport(itemId);
    const due = await this.states.apply(itemId, { kind: 'fetch_asked' }, Date.now());
    if (due) this.runner.wake();
    this.logger.info({ item_id: itemId, by: req[PRINCIPAL] }, 'report fetch asked');
    const after = await this.states.read(itemId);
    return {
      item_id: itemId,
      report_event_id: report.eventId,
      days_requested: after?.wanted?.days ?? after?.running?.days ?? null,
      due,
    };
  }

  @Get()
  async describe(@Param('itemId') itemId: string) {
    const state = await this.states.read(checked(itemId));
    if (!state) throw noReport(itemId);
    return view(state);
  }
}

function checked(itemId: string): string {
  if (itemId.length === 0 || itemId.length > 256) {
    throw new BadRequestException({
      error: { code: 'INVALID_FIELD', field: 'item_id', message: 'item_id: 1 to 256 characters' },
    });
  }
  return itemId;
}

function noReport(itemId: string): NotFoundException {
  return new NotFoundException({
    error: {
      code: 'NO_REPORT',
      message: `no report of item ${itemId} is known to the fetcher: nothing to fetch until CASHFLOW_REPORT_READY arrives`,
    },
  });
}

function view(state: ItemFetches) {
  return {
    item_id: state.itemId,
    pending_requests: state.pending.map((a) => ({
      request_id: a.requestId,
      days_requested: a.days,
      accepted_at: a.acceptedAt,
    })),
    wanted: state.wanted && plan(state.wanted),
    due_at: state.dueAt === null ? null : new Date(state.dueAt).toISOString(),
    running: state.running && plan(state.running),
    failed_attempts: state.attempts,
    polling: state.polling
      ? {
          polls: state.polling.polls,
          next_poll_at: new Date(state.polling.nextAt).toISOString(),
          last_successful_update_time: state.polling.lastSuccessfulUpdateTime,
          last_error_code: state.polling.lastError?.error_code ?? null,
        }
      : null,
    last_fetch: state.last && {
      fetch_id: state.last.fetchId,
      report_event_id: state.last.report.eventId,
      days_requested: state.last.days,
      last_successful_update_time: state.last.lastSuccessfulUpdateTime,
      fetched_at: state.last.fetchedAt,
    },
  };
}

function plan(p: NonNullable<ItemFetches['wanted']>) {
  return {
    report_event_id: p.report.eventId,
    report_received_at: p.report.receivedAt,
    days_requested: p.days,
    request_ids: p.requestIds,
  };
}
