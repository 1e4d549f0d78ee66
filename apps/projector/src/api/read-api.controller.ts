import { BearerAuthGuard } from '@cashflow/observability';
import { ItemListQuery, PageQuery } from '@cashflow/projection';
import { Controller, Get, Param, Query, UseGuards } from '@nestjs/common';
import { itemIdOf, notFound, orBadCursor, parse } from './api-errors';
import { ProjectionQueries } from './projection-queries';

const noRefreshState = (itemId: string) => notFound(`no refresh state for item ${itemId}`);

/**
 * Read-only HTTP API over the projection, for analytics consumers and tools (ops can also use
 * SQL). Bearer tokens from PROJECTOR_API_TOKENS; described by /openapi.json.
 */
@Controller('items')
@UseGuards(BearerAuthGuard)
export class ReadApiController {
  constructor(private readonly queries: ProjectionQueries) {}

  @Get()
  async list(@Query() query: Record<string, unknown>) {
    return orBadCursor(this.queries.items(parse(ItemListQuery, query)));
  }

  @Get(':itemId/refresh-state')
  async state(@Param('itemId') raw: string) {
    const itemId = itemIdOf(raw);
    const item = await this.queries.item(itemId);
    if (!item) throw noRefreshState(itemId);
    return item;
  }

  @Get(':itemId/refreshes')
  async refreshes(@Param('itemId') raw: string, @Query() query: Record<string, unknown>) {
    const itemId = itemIdOf(raw);
    const page = parse(PageQuery, query);
    if (!(await this.queries.item(itemId))) throw noRefreshState(itemId);
    return orBadCursor(this.queries.refreshes(itemId, page));
  }
}
