import { PlaidError } from '@cashflow/contracts';
import { Agent, errors, request, type Dispatcher } from 'undici';
import { z } from 'zod';
import type { PlaidCallError, PlaidResult } from './plaid-call-error';
import { inSpan } from '@cashflow/observability';
import { SpanKind, SpanStatusCode, type Attributes } from '@opentelemetry/api';

export interface PlaidClientOptions {
  readonly baseUrl: string;
  readonly clientId: string;
  readonly secret: string;
  /** Plaid documents refresh latency "typically < 10 s, up to 30 s or more": keep these well above. */
  readonly connectTimeoutMs?: number;
  readonly headersTimeoutMs?: number;
  readonly bodyTimeoutMs?: number;
  /** Concurrent connections per origin. */
  readonly connections?: number;
  /** Told of every answer (or failure to get one): for an app's metrics. */
  readonly onAnswer?: PlaidAnswerObserver;
}

/**
 * Sees each call end: the endpoint's path, the seconds from sending to the answer read and
 * validated, and `ok` or why not (Plaid's error_code, or `network`, `timeout`, `invalid`...).
 */
export type PlaidAnswerObserver = (path: string, seconds: number, result: string) => void;

/** An app's Plaid settings as its configuration resolves them (PLAID_* variables). */
export interface PlaidSettings {
  readonly baseUrl: string;
  readonly clientId: string;
  readonly secret: string;
  readonly connectTimeoutMs: number;
  /** Both the wait for the answer's headers and for its body. */
  readonly responseTimeoutMs: number;
}

/** The API version this client speaks (Plaid-Version header). */
export const PLAID_API_VERSION = '2020-09-14';

const RefreshResponse = z.looseObject({ request_id: z.string().min(1) });
export type CashflowReportRefreshResponse = z.infer<typeof RefreshResponse>;

/**
 * A transaction as /cashflow_report/get returns it (CashflowReportTransaction): the fields the
 * fetcher relies on are checked, every other field is kept as Plaid sent it.
 */
export const CashflowTransaction = z.looseObject({
  transaction_id: z.string().min(1),
  account_id: z.string().min(1),
  date: z.iso.date(),
  amount: z.number(),
  pending: z.boolean(),
  pending_transaction_id: z.string().nullable().optional(),
});
export type CashflowTransaction = z.infer<typeof CashflowTransaction>;

/** One page of /cashflow_report/get. */
const GetResponse = z.looseObject({
  accounts: z.array(z.looseObject({ account_id: z.string().min(1) })),
  transactions: z.array(CashflowTransaction),
  total_transactions: z.number().int().min(0),
  next_cursor: z.string(),
  has_more: z.boolean(),
  last_successful_update_time: z.string().min(1),
  request_id: z.string().min(1),
});
export type CashflowReportPage = z.infer<typeof GetResponse>;

const Money = z.looseObject({ amount: z.number().nullable() });
const InsightsResponse = z.looseObject({
  accounts: z.array(z.looseObject({ account_id: z.string().min(1) })),
  account_insights: z.looseObject({
    historical_balances: z.array(z.looseObject({ date: z.iso.date() })),
    monthly_summaries: z.array(
      z.looseObject({
        start_date: z.iso.date(),
        end_date: z.iso.date(),
        total_revenue: Money.nullable().optional(),
        ending_balance: Money.nullable().optional(),
        average_daily_net_cashflow_amount: Money.nullable().optional(),
      }),
    ),
  }),
  last_generated_time: z.string().nullable(),
  request_id: z.string().min(1),
});
export type CashflowInsights = z.infer<typeof InsightsResponse>;

export interface ReportPageRequest {
  readonly daysRequested: number;
  /** 1..500. */
  readonly count: number;
  /** "" for the first page, then the previous page's next_cursor. */
  readonly cursor: string;
}

/**
 * A small Plaid client over undici. Credentials travel in the PLAID-CLIENT-ID / PLAID-SECRET
 * headers, never in bodies we might log; responses are validated; every failure is a value.
 */
export class PlaidClient {
  private readonly agent: Agent;

  private readonly host: string;

  constructor(private readonly options: PlaidClientOptions) {
    this.host = new URL(options.baseUrl).host;
    this.agent = new Agent({
      connect: { timeout: options.connectTimeoutMs ?? 10_000 },
      headersTimeout: options.headersTimeoutMs ?? 90_000,
      bodyTimeout: options.bodyTimeoutMs ?? 90_000,
      connections: options.connections ?? 128,
    });
  }

  /** A client for an app's settings, with as many connections as it has calls out at once. */
  static fromSettings(
    settings: PlaidSettings,
    connections: number,
    onAnswer?: PlaidAnswerObserver,
  ): PlaidClient {
    return new PlaidClient({
      ...(onAnswer ? { onAnswer } : {}),
      baseUrl: settings.baseUrl,
      clientId: settings.clientId,
      secret: settings.secret,
      connectTimeoutMs: settings.connectTimeoutMs,
      headersTimeoutMs: settings.responseTimeoutMs,
      bodyTimeoutMs: settings.responseTimeoutMs,
      connections,
    });
  }

  /** POST /cashflow_report/refresh. */
  refreshCashflowReport(
    accessToken: string,
    daysRequested: number,
  ): Promise<PlaidResult<CashflowReportRefreshResponse>> {
    return this.call(
      '/cashflow_report/refresh',
      { access_token: accessToken, days_requested: daysRequested },
      RefreshResponse,
    );
  }

  /** POST /cashflow_report/get: one page of the Item's report. */
  getCashflowReport(
    accessToken: string,
    page: ReportPageRequest,
  ): Promise<PlaidResult<CashflowReportPage>> {
    return this.call(
      '/cashflow_report/get',
      {
        access_token: accessToken,
        days_requested: page.daysRequested,
        count: page.count,
        cursor: page.cursor,
      },
      GetResponse,
    );
  }

  /** POST /cashflow_report/insights/get. */
  getCashflowInsights(accessToken: string): Promise<PlaidResult<CashflowInsights>> {
    return this.call(
      '/cashflow_report/insights/get',
      { access_token: accessToken },
      InsightsResponse,
    );
  }

  /**
   * Any Plaid endpoint: POST `path` with `body`, validating a 200 answer with `schema`. Traced as
   * a client span `POST <path>` naming Plaid's `request_id` and error code, never the body (it
   * holds the access token) nor the credentials.
   */
  call<T>(path: string, body: object, schema: z.ZodType<T>): Promise<PlaidResult<T>> {
    return inSpan(
      `POST ${path}`,
      {
        kind: SpanKind.CLIENT,
        attributes: {
          'http.request.method': 'POST',
          'url.path': path,
          'server.address': this.host,
          'rpc.system': 'plaid',
        },
      },
      async (span) => {
        const started = performance.now();
        const result = await this.send(path, body, schema);
        this.options.onAnswer?.(
          path,
          (performance.now() - started) / 1000,
          result.ok ? 'ok' : failureCode(result.error),
        );
        span.setAttributes(resultAttributes(result));
        if (!result.ok) {
          span.setStatus({ code: SpanStatusCode.ERROR, message: failureCode(result.error) });
        }
        return result;
      },
    );
  }

  private async send<T>(path: string, body: object, schema: z.ZodType<T>): Promise<PlaidResult<T>> {
    let response: Dispatcher.ResponseData;
    try {
      response = await request(new URL(path, this.options.baseUrl), {
        method: 'POST',
        dispatcher: this.agent,
        headers: {
          'content-type': 'application/json',
          'plaid-client-id': this.options.clientId,
          'plaid-secret': this.options.secret,
          'plaid-version': PLAID_API_VERSION,
        },
        body: JSON.stringify(body),
      });
    } catch (error) {
      return { ok: false, error: transportError(error) };
    }
    let json: unknown;
    try {
      json = await response.body.json();
    } catch (error) {
      const failure = transportError(error);
      if (failure.kind !== 'network') return { ok: false, error: failure };
      return invalid(response.statusCode, 'body is not JSON');
    }
    if (response.statusCode === 200) {
      const parsed = schema.safeParse(json);
      return parsed.success
        ? { ok: true, value: parsed.data }
        : invalid(200, `unexpected response shape: ${parsed.error.issues[0]?.message ?? ''}`);
    }
    const plaidError = PlaidError.safeParse(json);
    return plaidError.success
      ? {
          ok: false,
          error: { kind: 'plaid', httpStatus: response.statusCode, error: plaidError.data },
        }
      : invalid(response.statusCode, `HTTP ${response.statusCode} without a Plaid error body`);
  }

  /** Waits for calls under way to finish, then closes the connections. */
  async close(): Promise<void> {
    await this.agent.close();
  }

  /**
   * Closes every connection now; calls under way fail. For shutdown, once the callers' grace
   * period is over: a call Plaid never answers must not hold the process for the response
   * time-out.
   */
  async destroy(): Promise<void> {
    await this.agent.destroy();
  }
}

function invalid(httpStatus: number, message: string): PlaidResult<never> {
  return { ok: false, error: { kind: 'invalid_response', httpStatus, message } };
}

function transportError(error: unknown): PlaidCallError {
  if (error instanceof errors.ConnectTimeoutError) {
    return { kind: 'timeout', phase: 'connect', message: 'connecting to Plaid timed out' };
  }
  if (error instanceof errors.HeadersTimeoutError) {
    return { kind: 'timeout', phase: 'headers', message: 'Plaid did not answer in time' };
  }
  if (error instanceof errors.BodyTimeoutError) {
    return { kind: 'timeout', phase: 'body', message: "Plaid's answer stalled" };
  }
  const code = (error as { code?: string }).code ?? 'UNKNOWN';
  // The message of a network error names host and port at most; never a credential.
  return { kind: 'network', code, message: (error as Error).message ?? String(error) };
}

/** What a call's span says of its result: status, Plaid's request id and error, nothing else. */
function resultAttributes(result: PlaidResult<unknown>): Attributes {
  if (result.ok) {
    const requestId = (result.value as { request_id?: unknown }).request_id;
    return {
      'http.response.status_code': 200,
      ...(typeof requestId === 'string' ? { 'plaid.request_id': requestId } : {}),
    };
  }
  const error = result.error;
  switch (error.kind) {
    case 'plaid':
      return {
        'http.response.status_code': error.httpStatus,
        'plaid.request_id': error.error.request_id ?? '',
        'plaid.error_type': error.error.error_type,
        'plaid.error_code': error.error.error_code,
        'error.type': error.error.error_code,
      };
    case 'invalid_response':
      return { 'http.response.status_code': error.httpStatus, 'error.type': 'invalid_response' };
    case 'timeout':
      return { 'error.type': `timeout_${error.phase}` };
    case 'network':
      return { 'error.type': error.code };
    default: {
      const unknown: never = error;
      return unknown;
    }
  }
}

function failureCode(error: PlaidCallError): string {
  return error.kind === 'plaid' ? error.error.error_code : error.kind;
}
