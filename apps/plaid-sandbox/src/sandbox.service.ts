import { LOGGER, METRICS_REGISTRY, type Logger } from '@cashflow/observability';
import { Counter, type Registry } from 'prom-client';
import { Inject, Injectable, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import type { PlaidSandboxConfig } from './config';
import { decideFault, type Faults } from './faults';
import { decideRefresh } from './items/decide-refresh';
import { decideGet } from './items/get-behaviour';
import { advanceItem, describeItem, type SandboxItem } from './items/item';
import { ItemStore } from './items/item-store';
import { sampleLatency } from './latency';
import {
  PlaidHttpError,
  newRequestId,
  plaidErrorBody,
  type PlaidErrorCode,
} from './plaid-api/plaid-errors';
import {
  GetRequest,
  InsightsGetRequest,
  RefreshRequest,
  TransactionsGetRequest,
  WebhookVerificationKeyGetRequest,
  parseRequest,
} from './plaid-api/requests';
import { SlidingWindowLimiter } from './rate-limiter';
import { transactionWindow } from './report-data/item-history';
import {
  accountInsights,
  businessAccount,
  decodeCursor,
  plaidItem,
  transactionsPage,
  type PageRequest,
} from './report-data/report';
import { toPlaidTransaction } from './report-data/transactions';
import { WebhookKeyRing } from './webhooks/key-ring';
import { plaidRetryPolicy } from './webhooks/retry-schedule';
import { WebhookSender } from './webhooks/webhook-sender';
import { GetAnswerLog } from './plaid-api/get-answer-log';
import type { ItemWebhookRequest } from './webhooks/item-webhooks';

export const SANDBOX_CONFIG = Symbol('SANDBOX_CONFIG');

/** Plaid's name for this webhook family; Plaid publishes no schema, so this is the sandbox's choice. */
export const WEBHOOK_TYPE = 'CASHFLOW_REPORT';
export const WEBHOOK_CODE = 'CASHFLOW_REPORT_READY';

/** Credentials from the request, checked against the sandbox's; Plaid accepts body or headers. */
export interface Caller {
  readonly clientId: string;
  readonly requestId: string;
}

/**
 * The sandbox's state and behaviour behind Plaid's endpoints: Items, rate limits, extraction,
 * signed webhooks. Controllers only translate HTTP.
 */
@Injectable()
export class SandboxService implements OnModuleInit, OnApplicationShutdown {
  readonly items: ItemStore;
  readonly keys = new WebhookKeyRing();
  readonly webhooks: WebhookSender;
  /** /cashflow_report/get answers served (GET /sandbox/get_answers). */
  readonly getLog: GetAnswerLog;
  private readonly perItem: SlidingWindowLimiter;
  private readonly perClient: SlidingWindowLimiter;
  /** Limits on /cashflow_report/get; none when configured 0. */
  private readonly getPerItem: SlidingWindowLimiter | undefined;
  private readonly getPerClient: SlidingWindowLimiter | undefined;
  private readonly timers = new Set<NodeJS.Timeout>();
  /** Requests held open by the timeout behaviour; dropped on shutdown. */
  readonly hanging = new Set<{ destroy(): void }>();

  /** Injected faults and the refresh latency; PUT /sandbox/faults replaces them. */
  faults: Faults;

  /** Refresh answers by error code ("none" for success): how benchmarks count 429s. */
  private readonly refreshAnswers: Counter<'error_code'>;
  /** /get and /insights/get answers by endpoint and error code: how tests see a second fetch. */
  private readonly getAnswers: Counter<'endpoint' | 'error_code'>;

  constructor(
    @Inject(SANDBOX_CONFIG) readonly config: PlaidSandboxConfig,
    @Inject(LOGGER) private readonly logger: Logger,
    @Inject(METRICS_REGISTRY) registry: Registry,
  ) {
    this.refreshAnswers = new Counter({
      name: 'plaid_sandbox_refresh_answers_total',
      help: 'Answers to /cashflow_report/refresh by error_code (none = accepted, held_open = an injected time-out).',
      labelNames: ['error_code'],
      registers: [registry],
    });
    this.getAnswers = new Counter({
      name: 'plaid_sandbox_get_answers_total',
      help: 'Answers to /cashflow_report/get and /cashflow_report/insights/get by endpoint and error_code (none = served).',
      labelNames: ['endpoint', 'error_code'],
      registers: [registry],
    });
    this.faults = config.faults;
    this.items = new ItemStore(config.defaultWebhook);
    this.perItem = new SlidingWindowLimiter(config.rateLimits.perItem, config.rateLimits.windowMs);
    this.perClient = new SlidingWindowLimiter(
      config.rateLimits.perClient,
      config.rateLimits.windowMs,
    );
    const { getPerItem, getPerClient, windowMs } = config.rateLimits;
    this.getPerItem = getPerItem > 0 ? new SlidingWindowLimiter(getPerItem, windowMs) : undefined;
    this.getPerClient =
      getPerClient > 0 ? new SlidingWindowLimiter(getPerClient, windowMs) : undefined;
    this.getLog = new GetAnswerLog(config.deliveryLogLimit);
    this.webhooks = new WebhookSender(
      this.keys,
      plaidRetryPolicy(config.timeScale, config.webhookTimeoutMs, config.webhookGiveUpAfterMs),
      config.timeScale,
      logger,
      config.deliveryLogLimit,
    );
  }

  async onModuleInit(): Promise<void> {
    await this.keys.rotate();
    if (this.config.seedFile) await this.seed(this.config.seedFile);
  }

  onApplicationShutdown(): void {
    this.webhooks.close();
    for (const timer of this.timers) clearTimeout(timer);
    for (const request of this.hanging) request.destroy();
  }

  /** Creates the seed file's Items; any problem stops start-up with the item and field named. */
  private async seed(path: string): Promise<void> {
    const fail = (message: string): never => {
      throw new Error(`seed file ${path}: ${message}`);
    };
    let json: unknown;
    try {
      json = JSON.parse(await readFile(path, 'utf8'));
    } catch (error) {
      fail((error as Error).message);
    }
    const list = z.array(z.unknown()).safeParse(json);
    if (!list.success) return fail('must be a JSON array of items');
    list.data.forEach((input, index) => {
      try {
        this.items.create(input);
      } catch (error) {
        const issue = error instanceof z.ZodError ? error.issues[0] : undefined;
        fail(
          `item ${index}: ${issue ? `${issue.path.join('.')}: ${issue.message}` : (error as Error).message}`,
        );
      }
    });
    this.logger.info({ path, items: list.data.length }, 'seeded items');
  }

  authenticate(body: unknown, headers: Record<string, string | string[] | undefined>): Caller {
    const requestId = newRequestId();
    const fromBody =
      typeof body === 'object' && body !== null ? (body as Record<string, unknown>) : {};
    const header = (name: string) => {
      const v = headers[name];
      return Array.isArray(v) ? v[0] : v;
    };
    const clientId =
      typeof fromBody.client_id === 'string' ? fromBody.client_id : header('plaid-client-id');
    const secret = typeof fromBody.secret === 'string' ? fromBody.secret : header('plaid-secret');
    if (!clientId || !secret) {
      const missing = [!clientId && 'client_id', !secret && 'secret'].filter(Boolean).join(', ');
      throw new PlaidHttpError(
        'MISSING_FIELDS',
        requestId,
        `the following required fields are missing: ${missing}`,
      );
    }
    if (
      clientId !== this.config.credentials.clientId ||
      secret !== this.config.credentials.secret
    ) {
      throw new PlaidHttpError('INVALID_API_KEYS', requestId);
    }
    return { clientId, requestId };
  }

  private itemFor(token: string, caller: Caller): SandboxItem {
    const item = this.items.byAccessToken(token);
    if (!item) throw new PlaidHttpError('INVALID_ACCESS_TOKEN', caller.requestId);
    return item;
  }

  /**
   * POST /cashflow_report/refresh. Resolves with the response, rejects with a PlaidHttpError, or
   * (timeout behaviour) never settles.
   */
  async refresh(caller: Caller, body: unknown): Promise<{ request_id: string }> {
    try {
      const answer = await this.answerRefresh(caller, body);
      this.refreshAnswers.inc({ error_code: 'none' });
      return answer;
    } catch (error) {
      this.refreshAnswers.inc({
        error_code:
          error instanceof PlaidHttpError ? error.body.error_code : 'INTERNAL_SERVER_ERROR',
      });
      throw error;
    }
  }

  private async answerRefresh(caller: Caller, body: unknown): Promise<{ request_id: string }> {
    const request = parseRequest(RefreshRequest, body, caller.requestId);
    const item = this.itemFor(request.access_token, caller);
    admitWithin(this.perClient, this.perItem, item, caller);
    item.refresh_calls += 1;
    const fault = decideFault(this.faults);
    if (fault === 'timeout') {
      this.refreshAnswers.inc({ error_code: 'held_open' });
      return new Promise<never>(() => undefined);
    }
    const decision = decideRefresh(item, item.refresh_calls);
    if (decision.kind === 'hang') return new Promise<never>(() => undefined);
    await sleep(sampleLatency(this.faults.latency) * this.config.timeScale);
    if (fault === 'error') throw new PlaidHttpError('INTERNAL_SERVER_ERROR', caller.requestId);
    if (decision.kind === 'fail') throw new PlaidHttpError(decision.code, caller.requestId);
    this.scheduleExtraction(item, decision.webhookError);
    return { request_id: caller.requestId };
  }

  /**
   * After the extraction delay: new data is in place (the Item's next generation) and
   * CASHFLOW_REPORT_READY goes out.
   */
  private scheduleExtraction(item: SandboxItem, webhookError: PlaidErrorCode | null): void {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      if (!webhookError) advanceItem(item, 1, new Date());
      this.fireWebhook(item, webhookError);
    }, this.config.extractionDelayMs * this.config.timeScale);
    this.timers.add(timer);
  }

  /** Sends CASHFLOW_REPORT_READY for the Item now (also a sandbox endpoint). */
  fireWebhook(item: SandboxItem, errorCode: PlaidErrorCode | null) {
    const body = {
      webhook_type: WEBHOOK_TYPE,
      webhook_code: WEBHOOK_CODE,
      item_id: item.item_id,
      error: errorCode ? plaidErrorBody(errorCode, newRequestId()) : null,
      environment: 'sandbox',
    };
    if (!item.webhook) {
      this.logger.info({ item_id: item.item_id }, 'no webhook URL for item; webhook not sent');
      return undefined;
    }
    return this.webhooks.send(item.item_id, item.webhook, body);
  }

  /**
   * Sends an Item webhook (webhook_type ITEM) for the Item now, signed like every other, with
   * the fields Plaid's schema for its code requires. Undefined when the Item has no webhook URL.
   */
  fireItemWebhook(item: SandboxItem, request: ItemWebhookRequest) {
    const base = {
      webhook_type: 'ITEM',
      webhook_code: request.webhook_code,
      item_id: item.item_id,
      environment: 'sandbox',
    };
    const body: Record<string, unknown> = (() => {
      switch (request.webhook_code) {
        case 'ERROR':
          return { ...base, error: plaidErrorBody(request.error_code, newRequestId()) };
        case 'PENDING_EXPIRATION':
          return { ...base, consent_expiration_time: request.at };
        case 'PENDING_DISCONNECT':
          return { ...base, reason: request.reason, disconnect_time: request.at };
        case 'USER_ACCOUNT_REVOKED':
          return { ...base, account_id: item.accounts[0]!.account_id };
        case 'WEBHOOK_UPDATE_ACKNOWLEDGED':
          return { ...base, new_webhook_url: item.webhook, error: null };
        case 'USER_PERMISSION_REVOKED':
        case 'NEW_ACCOUNTS_AVAILABLE':
          return { ...base, error: null };
        case 'LOGIN_REPAIRED':
          return base;
        default:
          return assertNever(request);
      }
    })();
    if (!item.webhook) {
      this.logger.info({ item_id: item.item_id }, 'no webhook URL for item; webhook not sent');
      return undefined;
    }
    return this.webhooks.send(item.item_id, item.webhook, body);
  }

  /** POST /cashflow_report/get: a page, a scripted error, or a rate limit; see GetBehaviour. */
  get(caller: Caller, body: unknown) {
    return this.counted('cashflow_report/get', () => this.answerGet(caller, body));
  }

  private async answerGet(caller: Caller, body: unknown) {
    const request = parseRequest(GetRequest, body, caller.requestId);
    const item = this.itemFor(request.access_token, caller);
    item.get_calls += 1;
    admitWithin(this.getPerClient, this.getPerItem, item, caller);
    const page = this.pageRequest(item, caller, request, request.days_requested);
    const { decision, next } = decideGet(item.get_behaviour, request.cursor === '');
    item.get_behaviour = next;
    await this.reportLatency(item);
    if (decision.kind === 'fail') throw new PlaidHttpError(decision.code, caller.requestId);
    const response = {
      ...transactionsPage(item, page),
      last_successful_update_time: item.last_successful_update_time,
      request_id: caller.requestId,
    };
    this.getLog.add({
      request_id: caller.requestId,
      item_id: item.item_id,
      last_successful_update_time: item.last_successful_update_time,
      answered_at: new Date().toISOString(),
    });
    if (decision.advanceAfter) advanceItem(item, 1, new Date());
    return response;
  }

  /** The Item's get_behaviour latency, scaled like every sandbox delay. */
  private async reportLatency(item: SandboxItem): Promise<void> {
    const ms = item.get_behaviour.latency_ms * this.config.timeScale;
    if (ms > 0) await sleep(ms);
  }

  /** Counts the answer of a /get or /insights/get call by its error code ("none" if served). */
  private async counted<T>(endpoint: string, answer: () => Promise<T>): Promise<T> {
    try {
      const response = await answer();
      this.getAnswers.inc({ endpoint, error_code: 'none' });
      return response;
    } catch (error) {
      this.getAnswers.inc({
        endpoint,
        error_code:
          error instanceof PlaidHttpError ? error.body.error_code : 'INTERNAL_SERVER_ERROR',
      });
      throw error;
    }
  }

  transactionsGet(caller: Caller, body: unknown) {
    const request = parseRequest(TransactionsGetRequest, body, caller.requestId);
    const item = this.itemFor(request.access_token, caller);
    const page = this.pageRequest(item, caller, request, undefined);
    return { ...transactionsPage(item, page), request_id: caller.requestId };
  }

  /** The page a request asks for, or INVALID_FIELD naming what is wrong with it. */
  private pageRequest(
    item: SandboxItem,
    caller: Caller,
    request: { count: number; cursor: string; options?: { account_ids?: string[] } | undefined },
    daysRequested: number | undefined,
  ): PageRequest {
    const offset = decodeCursor(request.cursor);
    if (offset === undefined)
      throw new PlaidHttpError(
        'INVALID_FIELD',
        caller.requestId,
        'cursor: not a cursor this endpoint returned',
      );
    const accountIds = request.options?.account_ids;
    const unknown =
      accountIds?.filter((id) => !item.accounts.some((a) => a.account_id === id)) ?? [];
    if (unknown.length > 0) {
      throw new PlaidHttpError(
        'INVALID_FIELD',
        caller.requestId,
        `options.account_ids: not accounts of this item: ${unknown.join(', ')}`,
      );
    }
    return { daysRequested, accountIds, offset, count: request.count };
  }

  /** POST /cashflow_report/insights/get, from the Item's current transactions. */
  insightsGet(caller: Caller, body: unknown) {
    return this.counted('cashflow_report/insights/get', async () => {
      const request = parseRequest(InsightsGetRequest, body, caller.requestId);
      const item = this.itemFor(request.access_token, caller);
      item.insights_calls += 1;
      await this.reportLatency(item);
      return {
        item: plaidItem(item),
        accounts: item.accounts
          .filter((a) => a.type === 'credit' || a.type === 'depository')
          .map(businessAccount),
        account_insights: accountInsights(item),
        last_generated_time: item.last_successful_update_time,
        request_id: caller.requestId,
      };
    });
  }

  /** Moves the Item's data on without a refresh (sandbox only). */
  advance(item: SandboxItem, generations: number): void {
    advanceItem(item, generations, new Date());
  }

  /** Every transaction the Item serves now within `daysRequested` days: the truth, unpaged. */
  transactionsNow(item: SandboxItem, daysRequested: number) {
    const { list, count } = transactionWindow(item, daysRequested);
    return {
      item_id: item.item_id,
      generation: item.generation,
      last_successful_update_time: item.last_successful_update_time,
      as_of: item.as_of,
      transactions: list.slice(0, count).map(toPlaidTransaction),
    };
  }

  webhookVerificationKeyGet(caller: Caller, body: unknown) {
    const request = parseRequest(WebhookVerificationKeyGetRequest, body, caller.requestId);
    const key = this.keys.publicKey(request.key_id);
    if (!key)
      throw new PlaidHttpError('INVALID_FIELD', caller.requestId, 'key_id: no key with this id');
    return { key, request_id: caller.requestId };
  }

  describe(item: SandboxItem) {
    return describeItem(item);
  }
}

/**
 * Admits a call within the client's and the Item's limits (none when undefined), or answers
 * Plaid's 429 RATE_LIMIT_EXCEEDED saying which limit it hit. Refused calls use up nothing.
 */
function admitWithin(
  perClient: SlidingWindowLimiter | undefined,
  perItem: SlidingWindowLimiter | undefined,
  item: SandboxItem,
  caller: Caller,
): void {
  const now = Date.now();
  if (perClient && !perClient.allows(caller.clientId, now)) {
    throw new PlaidHttpError(
      'RATE_LIMIT',
      caller.requestId,
      'rate limit exceeded for this client. please try again later',
    );
  }
  if (perItem && !perItem.allows(item.item_id, now)) {
    throw new PlaidHttpError('RATE_LIMIT', caller.requestId);
  }
  perClient?.admit(caller.clientId, now);
  perItem?.admit(item.item_id, now);
}

function assertNever(value: never): never {
  throw new Error(`unhandled: ${JSON.stringify(value)}`);
}
