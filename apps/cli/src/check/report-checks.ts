/**
 * Reads what the report fetcher stored and published, for rules 6 and 7 (report-invariants.ts).
 */
import { changelogKey, decodeChangelogKey, topicName } from '@cashflow/contracts';
import { queryRows } from '@cashflow/persistence';
import type { Kafka } from 'kafkajs';
import type { DataSource } from 'typeorm';
import { read } from '../log-reader';
import type { Finding, LogRecord } from './invariants';
import {
  canonical,
  checkChangelog,
  checkStoredAgainstSandbox,
  type StoredVersusServed,
} from './report-invariants';

/** Rule 6: each Item's last stored fetch against what the sandbox at `sandboxUrl` serves now. */
export async function storedAgainstSandbox(db: DataSource, sandboxUrl: string): Promise<Finding> {
  const lastFetches = await queryRows<{
    item_id: string;
    days_requested: number;
    window_start: string;
    last_successful_update_time: Date;
  }>(
    db,
    `SELECT DISTINCT ON (item_id) item_id, days_requested, window_start::text AS window_start,
            last_successful_update_time
       FROM report_fetches WHERE outcome = 'fetched'
      ORDER BY item_id, finished_at DESC`,
  );
  const items: StoredVersusServed[] = [];
  for (const last of lastFetches) {
    const url = new URL(
      `/sandbox/items/${encodeURIComponent(last.item_id)}/transactions`,
      sandboxUrl,
    );
    url.searchParams.set('days_requested', String(last.days_requested));
    const response = await fetch(url);
    if (response.status === 404) continue;
    if (!response.ok) {
      throw new Error(`the Plaid sandbox answered ${response.status} for ${url.pathname}`);
    }
    const served = (await response.json()) as {
      last_successful_update_time: string;
      transactions: { transaction_id: string; date: string }[];
    };
    const stored = await queryRows<{ transaction_id: string; content: unknown }>(
      db,
      `SELECT transaction_id, content FROM report_transactions
        WHERE item_id = $1 AND removed_at IS NULL AND date >= $2::date`,
      [last.item_id, last.window_start],
    );
    items.push({
      itemId: last.item_id,
      storedLastUpdate: last.last_successful_update_time.toISOString(),
      servedLastUpdate: served.last_successful_update_time,
      stored: new Map(stored.map((r) => [r.transaction_id, r.content])),
      served: new Map(
        served.transactions
          .filter((t) => t.date >= last.window_start)
          .map((t) => [t.transaction_id, t]),
      ),
    });
  }
  return checkStoredAgainstSandbox(items);
}

/** Rule 7: the transactions changelog, folded by key, against the stored transactions. */
export async function changelogAgainstStore(
  kafka: Kafka,
  db: DataSource,
  prefix: string,
  records: readonly LogRecord[],
): Promise<Finding> {
  const changelogOn = records.some(
    (r) => r.event?.type === 'ReportFetched' && r.event.data.changelog,
  );
  if (!changelogOn) {
    return {
      name: "the changelog's compacted view equals the stored transactions",
      holds: true,
      counts: {},
      examples: [],
      notes: ['no fetch put its changes on the changelog (REPORT_CHANGELOG_ENABLED=false?)'],
    };
  }
  // Fetches not yet published first: anything published after this read is theirs.
  const unpublished = await queryRows<{ item_id: string }>(
    db,
    'SELECT DISTINCT item_id FROM report_fetches WHERE published_at IS NULL',
  );
  const compacted = new Map<string, string | null>();
  await read(
    kafka,
    [topicName('transactions', prefix)],
    { fromBeginning: true, toEnd: true },
    ({ message }) => {
      const key = message.key?.toString();
      if (key === undefined) return;
      if (message.value === null) {
        compacted.set(key, null);
        return;
      }
      const value = JSON.parse(message.value.toString()) as Record<string, unknown>;
      delete value.item_id;
      delete value.fetch_id;
      compacted.set(key, canonical(value));
    },
  );
  const rows = await queryRows<{ item_id: string; transaction_id: string; content: unknown }>(
    db,
    'SELECT item_id, transaction_id, content FROM report_transactions WHERE removed_at IS NULL',
  );
  const table = new Map(
    rows.map((r) => [changelogKey(r.item_id, r.transaction_id), canonical(r.content)]),
  );
  return checkChangelog(
    compacted,
    table,
    new Set(unpublished.map((r) => r.item_id)),
    (key) => decodeChangelogKey(key)?.item_id,
  );
}
