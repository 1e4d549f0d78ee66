import { LOGGER, type Logger } from '@cashflow/observability';
import {
  BadRequestException,
  Body,
  Controller,
  Delete,
  Get,
  HttpCode,
  Inject,
  NotFoundException,
  Param,
  Put,
  Req,
  UseGuards,
} from '@nestjs/common';
import type { Request } from 'express';
import { z } from 'zod';
import { BearerAuthGuard, PRINCIPAL } from '@cashflow/observability';
import { ACCESS_TOKEN_PATTERN, TokenVault } from '@cashflow/access-tokens';
import { tokenFact } from '../health/health-events';
import { ItemHealthService } from '../health/item-health.service';

const PutToken = z.strictObject({
  access_token: z
    .string()
    .regex(ACCESS_TOKEN_PATTERN, 'must be a Plaid access token (access-<environment>-...)'),
});

const ItemId = z.string().min(1).max(256);

/**
 * Register, rotate (register again) and remove an Item's Plaid access token. Authenticated by
 * bearer token; answers never contain the access token.
 */
@Controller('items/:itemId/access-token')
@UseGuards(BearerAuthGuard)
export class AccessTokensController {
  constructor(
    private readonly vault: TokenVault,
    private readonly health: ItemHealthService,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  @Put()
  async put(
    @Param('itemId') itemId: string,
    @Body() body: unknown,
    @Req() req: Request & { [PRINCIPAL]?: string },
  ) {
    const id = this.itemId(itemId);
    const parsed = PutToken.safeParse(body);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      // The message names the field only: the rejected value may be a real token.
      throw new BadRequestException({
        error: {
          code: 'INVALID_FIELD',
          field: issue?.path.join('.') || 'body',
          message: `${issue?.path.join('.') || 'body'}: ${issue?.message ?? 'invalid'}`,
        },
      });
    }
    const token = parsed.data.access_token;
    // Another token than the one held (or none held): the Item was linked again, so whatever
    // its user had to do is done. Folded before the token is stored, so a retried PUT after a
    // failure here still counts; the same token registered again says nothing new.
    const held = await this.vault.describe(id);
    const before = held ? await this.vault.reveal(id).catch(() => null) : undefined;
    const relinked = before !== token;
    if (relinked) await this.health.record(tokenFact(id, new Date()));
    const record = await this.vault.put(id, token, req[PRINCIPAL] ?? 'unknown');
    this.logger.info(
      { item_id: id, registered_by: record.registered_by, key_id: record.key_id, relinked },
      'access token registered',
    );
    return record;
  }

  @Get()
  async get(@Param('itemId') itemId: string) {
    const record = await this.vault.describe(this.itemId(itemId));
    if (!record)
      throw new NotFoundException({
        error: { code: 'NOT_FOUND', message: `no access token for item ${itemId}` },
      });
    return record;
  }

  @Delete()
  @HttpCode(204)
  async remove(@Param('itemId') itemId: string, @Req() req: Request & { [PRINCIPAL]?: string }) {
    const id = this.itemId(itemId);
    if (!(await this.vault.remove(id)))
      throw new NotFoundException({
        error: { code: 'NOT_FOUND', message: `no access token for item ${id}` },
      });
    this.logger.info({ item_id: id, removed_by: req[PRINCIPAL] }, 'access token removed');
  }

  private itemId(raw: string): string {
    if (!ItemId.safeParse(raw).success) {
      throw new BadRequestException({
        error: { code: 'INVALID_FIELD', field: 'item_id', message: 'item_id: 1 to 256 characters' },
      });
    }
    return raw;
  }
}
