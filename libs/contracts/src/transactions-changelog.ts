/**
 * The transactions changelog topic: the report fetcher's stored transactions as a log-compacted
 * topic, so analytics consumers and Kafka Connect sinks get the data without access tokens.
 *
 * - Key: `{"item_id":"…","transaction_id":"…"}` (JSON, fields in that order, no spaces), the same
 *   bytes for every change of one transaction, so compaction keeps its latest.
 * - Value: the transaction as Plaid gave it, plus `item_id` and `fetch_id` (the fetch it came
 *   from); null (a tombstone) when the transaction was removed.
 * - Headers: `content-type`, `cashflow_change` (added, modified or removed) and
 *   `cashflow_fetch_id`, on tombstones too.
 *
 * Not CloudEvents: a record is a row's state, not something that happened; the ReportFetched
 * event says what a fetch changed.
 */
import { z } from 'zod';
import { ItemId } from './events/common';
import { FetchId } from './events/report-fetched';
import { JSON_CONTENT_TYPE } from './kafka-binding';

export const CHANGELOG_HEADERS = {
  change: 'cashflow_change',
  fetchId: 'cashflow_fetch_id',
  contentType: 'content-type',
} as const;

export const TransactionChange = z.enum(['added', 'modified', 'removed']);
export type TransactionChange = z.infer<typeof TransactionChange>;

export const ChangelogKey = z.strictObject({
  item_id: ItemId,
  transaction_id: z.string().min(1),
});
export type ChangelogKey = z.infer<typeof ChangelogKey>;

/**
 * A changelog value: Plaid's CashflowReportTransaction (its fields kept as Plaid sent them,
 * unknown ones included) with the Item and the fetch added.
 */
export const ChangelogTransaction = z
  .looseObject({
    item_id: ItemId,
    fetch_id: FetchId,
    transaction_id: z.string().min(1),
    account_id: z.string().min(1),
    date: z.iso.date(),
    amount: z.number(),
    pending: z.boolean(),
  })
  .meta({ title: 'Changelog transaction v1' })
  .describe(
    'A transaction as Plaid gave it in the fetch fetch_id, plus item_id and fetch_id; a null value (tombstone) means it was removed.',
  );
export type ChangelogTransaction = z.infer<typeof ChangelogTransaction>;

/** The key of a transaction's changelog records: always the same bytes for one transaction. */
export function changelogKey(itemId: string, transactionId: string): string {
  return JSON.stringify({ item_id: itemId, transaction_id: transactionId });
}

/** A changelog record's key, or undefined when it is not one. */
export function decodeChangelogKey(key: Buffer | string | null): ChangelogKey | undefined {
  if (key === null) return undefined;
  try {
    const parsed = ChangelogKey.safeParse(JSON.parse(key.toString()));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

/** A record ready to produce: a transaction's state, or its tombstone. */
export interface ChangelogRecord {
  readonly key: string;
  readonly value: string | null;
  readonly headers: Record<string, string>;
}

/**
 * A record whose value is already JSON text (the transaction with item_id and fetch_id, as the
 * store writes it); `change` removed makes a tombstone whatever the value.
 */
export function changelogRecordOf(
  itemId: string,
  fetchId: string,
  transactionId: string,
  change: TransactionChange,
  valueJson: string,
): ChangelogRecord {
  return {
    key: changelogKey(itemId, transactionId),
    value: change === 'removed' ? null : valueJson,
    headers: {
      [CHANGELOG_HEADERS.contentType]: JSON_CONTENT_TYPE,
      [CHANGELOG_HEADERS.change]: change,
      [CHANGELOG_HEADERS.fetchId]: fetchId,
    },
  };
}
