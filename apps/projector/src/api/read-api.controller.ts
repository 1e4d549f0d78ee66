import { ItemId, fromZodIssues } from '@cashflow/contracts';
import { BearerAuthGuard } from '@cashflow/observability';
import {
  BadRequestException,
  Controller,
  Get,
  NotFoundException,
  Param,
  Query,
  UseGuards,
} from '@nestjs/common';
import type { z } from 'zod';
import { InvalidCursorError, ProjectionQueries } from './projection-queries';
import { ItemListQuery, PageQuery } from '@cashflow/projection';

function parse<T extends z.ZodType>(schema: T, input: unknown): z.infer<T> {
  const result = schema.safeParse(input);
  if (!result.success) {
    throw new BadRequestException({
      error: { code: 'INVALID_PARAMETER', message: fromZodIssues(result.error.issues).message },
    });
  }
  return result.data;
}

function itemIdOf(raw: string): string {
  return parse(ItemId, raw);
}

async function orBadCursor<T>(work: Promise<T>): Promise<T> {
  try {
    return await work;
  } catch (error) {
    if (error instanceof InvalidCursorError) {
      throw new BadRequestException({
        error: { code: 'INVALID_PARAMETER', message: error.message },
      });
    }
    throw error;
  }
}

const notFound = (itemId: string) =>
  new NotFoundException({
    error: { code: 'NOT_FOUND', message: `no refresh state for item ${itemId}` },
  });

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
    if (!item) throw notFound(itemId);
    return item;
  }

  @Get(':itemId/refreshes')
  async refreshes(@Param('itemId') raw: string, @Query() query: Record<string, unknown>) {
    const itemId = itemIdOf(raw);
    const page = parse(PageQuery, query);
    if (!(await this.queries.item(itemId))) throw notFound(itemId);
    return orBadCursor(this.queries.refreshes(itemId, page));
  }
}
