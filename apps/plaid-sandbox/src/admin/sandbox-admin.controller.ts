import {
  Controller,
  Delete,
  Get,
  HttpCode,
  HttpException,
  Param,
  Post,
  Put,
  Query,
  Req,
} from '@nestjs/common';
import type { Request } from 'express';
import { z } from 'zod';
import { FaultsError, FaultsUpdate, describeFaults, updateFaults } from '../faults';
import { GetBehaviour } from '../items/get-behaviour';
import { Behaviour } from '../items/item';
import { ItemWebhookRequest } from '../webhooks/item-webhooks';
import { ItemConflictError } from '../items/item-store';
import { PLAID_ERROR_CODES, type PlaidErrorCode } from '../plaid-api/plaid-errors';
import { SandboxService } from '../sandbox.service';

/** Sandbox-only endpoints for scripting scenarios; Plaid has no such paths. */
@Controller('sandbox')
export class SandboxAdminController {
  constructor(private readonly sandbox: SandboxService) {}

  @Post('items')
  createItem(@Req() req: Request) {
    try {
      return { item: this.sandbox.describe(this.sandbox.items.create(jsonBody(req))) };
    } catch (error) {
      if (error instanceof z.ZodError) throw invalid(error);
      if (error instanceof ItemConflictError) throw adminError(409, 'CONFLICT', error.message);
      throw error;
    }
  }

  @Get('items')
  listItems() {
    return { items: this.sandbox.items.list().map((item) => this.sandbox.describe(item)) };
  }

  @Get('items/:itemId')
  getItem(@Param('itemId') itemId: string) {
    return { item: this.sandbox.describe(this.item(itemId)) };
  }

  @Put('items/:itemId/behaviour')
  setBehaviour(@Param('itemId') itemId: string, @Req() req: Request) {
    const item = this.item(itemId);
    const parsed = Behaviour.safeParse(jsonBody(req));
    if (!parsed.success) throw invalid(parsed.error);
    item.behaviour = parsed.data;
    item.refresh_calls = 0;
    return { item: this.sandbox.describe(item) };
  }

  /** How /cashflow_report/get answers from now on; replaces the whole get_behaviour. */
  @Put('items/:itemId/get_behaviour')
  setGetBehaviour(@Param('itemId') itemId: string, @Req() req: Request) {
    const item = this.item(itemId);
    const parsed = GetBehaviour.safeParse(jsonBody(req) ?? {});
    if (!parsed.success) throw invalid(parsed.error);
    item.get_behaviour = parsed.data;
    return { item: this.sandbox.describe(item) };
  }

  /**
   * Moves the Item's data on by `generations` (default 1) without a refresh, as if one had
   * completed, but sends no webhook; last_successful_update_time moves too.
   */
  @Post('items/:itemId/advance')
  @HttpCode(200)
  advance(@Param('itemId') itemId: string, @Req() req: Request) {
    const item = this.item(itemId);
    const parsed = z
      .strictObject({ generations: z.number().int().min(1).max(10_000).default(1) })
      .safeParse(jsonBody(req) ?? {});
    if (!parsed.success) throw invalid(parsed.error);
    this.sandbox.advance(item, parsed.data.generations);
    return { item: this.sandbox.describe(item) };
  }

  /**
   * Every transaction the Item serves now within `days_requested` days of its as-of day, unpaged,
   * in /cashflow_report/get's order and shape: the truth a stored copy can be compared with.
   */
  @Get('items/:itemId/transactions')
  transactions(@Param('itemId') itemId: string, @Query('days_requested') days?: string) {
    const item = this.item(itemId);
    const parsed = z.coerce
      .number()
      .int()
      .min(1)
      .max(730)
      .safeParse(days ?? Number.NaN);
    if (!parsed.success) {
      throw adminError(
        400,
        'INVALID_FIELD',
        'days_requested: an integer from 1 to 730 is required',
        'days_requested',
      );
    }
    return this.sandbox.transactionsNow(item, parsed.data);
  }

  @Delete('items/:itemId')
  @HttpCode(204)
  removeItem(@Param('itemId') itemId: string) {
    if (!this.sandbox.items.remove(itemId)) throw notFound(`no item ${itemId}`);
  }

  /** Sends CASHFLOW_REPORT_READY now; body `{ "error_code": "..." }` makes it carry an error. */
  @Post('items/:itemId/fire_webhook')
  fireWebhook(@Param('itemId') itemId: string, @Req() req: Request) {
    const item = this.item(itemId);
    const parsed = z
      .strictObject({
        error_code: z.enum(PLAID_ERROR_CODES as [PlaidErrorCode, ...PlaidErrorCode[]]).optional(),
      })
      .safeParse(jsonBody(req) ?? {});
    if (!parsed.success) throw invalid(parsed.error);
    const delivery = this.sandbox.fireWebhook(item, parsed.data.error_code ?? null);
    if (!delivery) throw adminError(409, 'NO_WEBHOOK', `item ${itemId} has no webhook URL`);
    return { delivery };
  }

  /**
   * Sends an Item webhook now (ERROR, PENDING_EXPIRATION, PENDING_DISCONNECT,
   * USER_PERMISSION_REVOKED, USER_ACCOUNT_REVOKED, LOGIN_REPAIRED, NEW_ACCOUNTS_AVAILABLE,
   * WEBHOOK_UPDATE_ACKNOWLEDGED), signed like every webhook; see ItemWebhookRequest.
   */
  @Post('items/:itemId/item_webhook')
  itemWebhook(@Param('itemId') itemId: string, @Req() req: Request) {
    const item = this.item(itemId);
    const parsed = ItemWebhookRequest.safeParse(jsonBody(req) ?? {});
    if (!parsed.success) throw invalid(parsed.error);
    const delivery = this.sandbox.fireItemWebhook(item, parsed.data);
    if (!delivery) throw adminError(409, 'NO_WEBHOOK', `item ${itemId} has no webhook URL`);
    return { delivery };
  }

  /**
   * The Item's login breaks: refresh calls answer ITEM_LOGIN_REQUIRED from now on and the Item
   * webhook ERROR (ITEM_LOGIN_REQUIRED) is sent, as Plaid does.
   */
  @Post('items/:itemId/break_login')
  @HttpCode(200)
  breakLogin(@Param('itemId') itemId: string) {
    const item = this.item(itemId);
    item.behaviour = { kind: 'item_login_required' };
    const delivery = this.sandbox.fireItemWebhook(item, {
      webhook_code: 'ERROR',
      error_code: 'ITEM_LOGIN_REQUIRED',
    });
    return { item: this.sandbox.describe(item), delivery: delivery ?? null };
  }

  /** The Item's login works again: refresh calls succeed and LOGIN_REPAIRED is sent. */
  @Post('items/:itemId/repair_login')
  @HttpCode(200)
  repairLogin(@Param('itemId') itemId: string) {
    const item = this.item(itemId);
    item.behaviour = { kind: 'success' };
    const delivery = this.sandbox.fireItemWebhook(item, { webhook_code: 'LOGIN_REPAIRED' });
    return { item: this.sandbox.describe(item), delivery: delivery ?? null };
  }

  @Get('faults')
  faults() {
    return { faults: describeFaults(this.sandbox.faults) };
  }

  /**
   * Injected faults for every refresh call from now on: `error_rate` (500s), `timeout_rate`
   * (never answered) and `refresh_latency`; fields left out keep their value.
   */
  @Put('faults')
  setFaults(@Req() req: Request) {
    const parsed = FaultsUpdate.safeParse(jsonBody(req) ?? {});
    if (!parsed.success) throw invalid(parsed.error);
    try {
      this.sandbox.faults = updateFaults(this.sandbox.faults, parsed.data);
    } catch (error) {
      if (error instanceof FaultsError)
        throw adminError(400, 'INVALID_FIELD', error.message, error.field);
      throw error;
    }
    return { faults: describeFaults(this.sandbox.faults) };
  }

  @Get('webhooks')
  deliveries(@Query('item_id') itemId?: string) {
    return {
      deliveries: this.sandbox.webhooks.list(itemId),
      // Non-zero: the log no longer holds every delivery (PLAID_SANDBOX_DELIVERY_LOG_LIMIT).
      forgotten: this.sandbox.webhooks.forgotten,
    };
  }

  /** The /cashflow_report/get answers served, for matching reports found by polling. */
  @Get('get_answers')
  getAnswers(@Query('item_id') itemId?: string) {
    return {
      answers: this.sandbox.getLog.list(itemId),
      // Non-zero: the log no longer holds every answer (PLAID_SANDBOX_DELIVERY_LOG_LIMIT).
      forgotten: this.sandbox.getLog.forgotten,
    };
  }

  @Get('webhook_keys')
  keys() {
    return { keys: this.sandbox.keys.list() };
  }

  /** A new signing key; earlier keys stay published until expired. */
  @Post('webhook_keys/rotate')
  async rotate() {
    return { key: await this.sandbox.keys.rotate() };
  }

  /**
   * A Plaid-Verification JWT for the request body's exact bytes, signed with the newest key, for
   * testing a receiver with bodies of your own. `?iat=<unix seconds>` backdates (or post-dates) it.
   */
  @Post('webhook_keys/sign')
  @HttpCode(200)
  async sign(@Req() req: Request, @Query('iat') iat?: string) {
    const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    let at = new Date();
    if (iat !== undefined) {
      const seconds = Number(iat);
      if (!Number.isInteger(seconds))
        throw adminError(400, 'INVALID_FIELD', 'iat: unix seconds', 'iat');
      at = new Date(seconds * 1000);
    }
    return { jwt: await this.sandbox.keys.sign(body, at) };
  }

  @Post('webhook_keys/:kid/expire')
  expire(@Param('kid') kid: string) {
    const key = this.sandbox.keys.expire(kid);
    if (!key) throw notFound(`no key ${kid}`);
    return { key };
  }

  private item(itemId: string) {
    const item = this.sandbox.items.byItemId(itemId);
    if (!item) throw notFound(`no item ${itemId}`);
    return item;
  }
}

function jsonBody(req: Request): unknown {
  const raw: unknown = req.body;
  const text = Buffer.isBuffer(raw) ? raw.toString('utf8').trim() : '';
  if (text === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw adminError(400, 'INVALID_BODY', 'body is not JSON');
  }
}

function adminError(status: number, code: string, message: string, field?: string) {
  return new HttpException({ error: { code, message, ...(field ? { field } : {}) } }, status);
}

function notFound(message: string) {
  return adminError(404, 'NOT_FOUND', message);
}

function invalid(error: z.ZodError) {
  const issue = error.issues[0];
  const field = issue?.path.join('.') || '(body)';
  return adminError(400, 'INVALID_FIELD', `${field}: ${issue?.message ?? 'invalid'}`, field);
}
