import { BearerAuthGuard } from '@cashflow/observability';
import { TransactionQuery } from '@cashflow/projection';
import { Controller, Get, Param, Query, UseGuards } from '@nestjs/common';
import { itemIdOf, notFound, orBadCursor, parse } from './api-errors';
import { NoReportError, ReportQueries } from './report-queries';

/**
 * The stored Cashflow Report of an Item, as the report fetcher wrote it: its summary and its
 * transactions. Same bearer tokens as the rest of the read API (PROJECTOR_API_TOKENS).
 */
@Controller('items')
@UseGuards(BearerAuthGuard)
export class ReportApiController {
  constructor(private readonly reports: ReportQueries) {}

  @Get(':itemId/report')
  async report(@Param('itemId') raw: string) {
    const itemId = itemIdOf(raw);
    try {
      return await this.reports.report(itemId);
    } catch (error) {
      if (error instanceof NoReportError) throw notFound(error.message);
      throw error;
    }
  }

  @Get(':itemId/transactions')
  async transactions(@Param('itemId') raw: string, @Query() query: Record<string, unknown>) {
    const itemId = itemIdOf(raw);
    const page = parse(TransactionQuery, query);
    if (!(await this.reports.fetched(itemId))) throw notFound(new NoReportError(itemId).message);
    return orBadCursor(this.reports.transactions(itemId, page));
  }
}
