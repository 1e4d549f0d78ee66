import { queryRows } from '@cashflow/persistence';
import type { DataSource } from 'typeorm';
import { z } from 'zod';
import type { ItemListQuery, ItemRefreshState, PageQuery, Refresh } from '@cashflow/projection';
import { decodeCursor, encodeCursor } from './cursor';

type Item = z.infer<typeof ItemRefreshState>;
type RefreshRow = z.infer<typeof Refresh>;

const ItemCursor = z.tuple([z.string()]);
/** A request's offset (or the largest bigint, for one whose RefreshRequested is unread), its id. */
const RefreshCursor = z.tuple([
  z
    .string()
    .regex(/^\d{1,19}$/)
    .refine((offset) => BigInt(offset) <= 2n ** 63n - 1n),
  z.string(),
]);

const ITEM_SELECT = `
  SELECT item_id, status, latest_request_id, days_requested, requested_at, accepted_at, ready_at,
         failed_at, plaid_request_id, attempts, refreshes, last_error_source, last_error_type,
         last_error_code, last_error_message, last_error_at, fetched_at,
         last_successful_update_time, transaction_count, fetch_failed_at, fetch_error_code,
         fetch_error_message, health_status, health_reason, consent_expires_at,
         health_changed_at, updated_at,
         (status = 'refreshing' AND accepted_at < now() - make_interval(mins => $1)) AS stuck
    FROM item_refresh_state`;

const iso = (value: unknown) => (value instanceof Date ? value.toISOString() : null);

/** `<prefix>_source/_type/_code/_message` columns as an ErrorSummary, or null without a code. */
function errorSummary(row: Record<string, unknown>, prefix: 'last_error' | 'error', at: unknown) {
  if (row[`${prefix}_code`] === null) return null;
  return {
    source: row[`${prefix}_source`] as 'plaid' | 'worker' | 'webhook',
    type: row[`${prefix}_type`] as string | null,
    code: row[`${prefix}_code`] as string,
    message: row[`${prefix}_message`] as string,
    at: iso(at)!,
  };
}

function toItem(row: Record<string, unknown>): Item {
  return {
    item_id: row.item_id as string,
    status: row.status as Item['status'],
    stuck: row.stuck === true,
    health: {
      status: row.health_status as Item['health']['status'],
      reason: row.health_reason as string | null,
      consent_expires_at: iso(row.consent_expires_at),
      changed_at: iso(row.health_changed_at),
    },
    latest_request_id: row.latest_request_id as string | null,
    days_requested: row.days_requested as number | null,
    requested_at: iso(row.requested_at),
    accepted_at: iso(row.accepted_at),
    ready_at: iso(row.ready_at),
    failed_at: iso(row.failed_at),
    plaid_request_id: row.plaid_request_id as string | null,
    attempts: row.attempts as number | null,
    refreshes: row.refreshes as number,
    last_error: errorSummary(row, 'last_error', row.last_error_at),
    fetched_at: iso(row.fetched_at),
    last_successful_update_time: iso(row.last_successful_update_time),
    transaction_count: row.transaction_count as number | null,
    last_fetch_failure:
      row.fetch_error_code === null
        ? null
        : {
            code: row.fetch_error_code as string,
            message: row.fetch_error_message as string,
            at: iso(row.fetch_failed_at)!,
          },
    updated_at: iso(row.updated_at)!,
  };
}

function toRefresh(row: Record<string, unknown>): RefreshRow {
  const num = (v: unknown) => (v === null ? null : Number(v));
  return {
    request_id: row.request_id as string,
    status: row.status as RefreshRow['status'],
    days_requested: row.days_requested as number | null,
    requested_by: row.requested_by as string | null,
    requested_at: iso(row.requested_at),
    accepted_at: iso(row.accepted_at),
    ready_at: iso(row.ready_at),
    failed_at: iso(row.failed_at),
    plaid_request_id: row.plaid_request_id as string | null,
    attempts: row.attempts as number | null,
    coalesced_into: row.coalesced_into as string | null,
    retryable: row.retryable as boolean | null,
    // A request's error happened when it failed.
    error: errorSummary(row, 'error', row.failed_at),
    fetched_at: iso(row.fetched_at),
    overdue_at: iso(row.overdue_at),
    seconds_to_accept: num(row.seconds_to_accept),
    seconds_to_ready: num(row.seconds_to_ready),
    seconds_to_fetched: num(row.seconds_to_fetched),
  };
}

/** The read API's queries against the projection tables. */
export class ProjectionQueries {
  constructor(
    private readonly db: DataSource,
    private readonly stuckAfterMinutes: number,
  ) {}

  async item(itemId: string): Promise<Item | undefined> {
    const [row] = await queryRows<Record<string, unknown>>(
      this.db,
      `${ITEM_SELECT} WHERE item_id = $2`,
      [this.stuckAfterMinutes, itemId],
    );
    return row ? toItem(row) : undefined;
  }

  async items(query: z.infer<typeof ItemListQuery>) {
    const params: unknown[] = [this.stuckAfterMinutes];
    const where: string[] = [];
    const param = (value: unknown) => `$${params.push(value)}`;
    if (query.status) where.push(`status = ${param(query.status)}`);
    if (query.error_code) where.push(`last_error_code = ${param(query.error_code)}`);
    if (query.stuck === 'true') {
      where.push(`status = 'refreshing' AND accepted_at < now() - make_interval(mins => $1)`);
    }
    if (query.stuck === 'false') {
      // An Item without a refresh status (known from its health alone) is not stuck either.
      where.push(
        `NOT coalesce(status = 'refreshing' AND accepted_at < now() - make_interval(mins => $1), false)`,
      );
    }
    if (query.health) where.push(`health_status = ${param(query.health)}`);
    if (query.needs_attention === 'true') where.push(`health_status <> 'healthy'`);
    if (query.needs_attention === 'false') where.push(`health_status = 'healthy'`);
    if (query.cursor) where.push(`item_id > ${param(decodeCursor(query.cursor, ItemCursor)[0])}`);
    const rows = await queryRows<Record<string, unknown>>(
      this.db,
      `${ITEM_SELECT} ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
       ORDER BY item_id LIMIT ${param(query.limit + 1)}`,
      params,
    );
    const page = rows.slice(0, query.limit).map(toItem);
    const more = rows.length > query.limit;
    return {
      items: page,
      next_cursor: more ? encodeCursor([page[page.length - 1]!.item_id]) : null,
    };
  }

  /** An Item's refreshes, newest first (requests whose RefreshRequested is unread first). */
  async refreshes(itemId: string, query: z.infer<typeof PageQuery>) {
    const params: unknown[] = [itemId];
    const param = (value: unknown) => `$${params.push(value)}`;
    const sortKey = `COALESCE(request_offset, 9223372036854775807)`;
    let after = '';
    if (query.cursor) {
      const [offset, id] = decodeCursor(query.cursor, RefreshCursor);
      after = `AND (${sortKey}, request_id) < (${param(offset)}::bigint, ${param(id)})`;
    }
    const rows = await queryRows<Record<string, unknown>>(
      this.db,
      `SELECT *, ${sortKey}::text AS sort_key FROM refresh_requests
        WHERE item_id = $1 ${after}
        ORDER BY ${sortKey} DESC, request_id DESC LIMIT ${param(query.limit + 1)}`,
      params,
    );
    const page = rows.slice(0, query.limit);
    const last = page[page.length - 1];
    return {
      refreshes: page.map(toRefresh),
      next_cursor:
        rows.length > query.limit && last ? encodeCursor([last.sort_key, last.request_id]) : null,
    };
  }

  async stuckItems(): Promise<number> {
    const [row] = await queryRows<{ n: number }>(
      this.db,
      `SELECT count(*)::int AS n FROM item_refresh_state
        WHERE status = 'refreshing' AND accepted_at < now() - make_interval(mins => $1)`,
      [this.stuckAfterMinutes],
    );
    return row?.n ?? 0;
  }
}
