import {
  changelogRecordOf,
  createEvent,
  type ReportFetchFailed,
  type ReportFetched,
  type ReportOverdue,
  type ReportReady,
  type TransactionChange,
} from '@cashflow/contracts';
import type { EventPublisher } from '@cashflow/kafka';
import { queryRows } from '@cashflow/persistence';
import type { DataSource } from 'typeorm';

/** Changelog records read and sent per round. */
const CHANGELOG_BATCH = 1000;

/**
 * Puts an Item's ended fetches on Kafka, oldest first: each stored fetch's changelog records
 * (read back from the rows it changed, so nothing of a report is held in memory), then its event,
 * then marks it published. Runs only while the Item's claim is held, so changelog records of one
 * transaction reach Kafka in the order of the fetches; after a crash the next claim publishes
 * what was left (records sent twice are the same records: compaction and consumers keyed by
 * transaction see no difference).
 */
export class FetchPublisher {
  constructor(
    private readonly db: DataSource,
    private readonly publisher: EventPublisher,
  ) {}

  /**
   * Publishes every unpublished fetch of the Item; returns how many. `stillHeld` is asked before
   * each batch: a run whose claim was taken over stops, so it cannot put an older fetch's
   * records after a newer one's.
   */
  async publishPending(
    itemId: string,
    stillHeld: () => Promise<boolean> = () => Promise.resolve(true),
  ): Promise<number> {
    const polls = await this.publishPolls(itemId, stillHeld);
    const rows: {
      fetch_id: string;
      event: ReportFetched | ReportFetchFailed;
      changelog_pending: boolean;
    }[] = await this.db.query(
      `SELECT fetch_id, event, changelog_pending FROM report_fetches
          WHERE item_id = $1 AND published_at IS NULL
          ORDER BY finished_at, fetch_id`,
      [itemId],
    );
    for (const row of rows) {
      if (row.changelog_pending) await this.publishChangelog(itemId, row.fetch_id, stillHeld);
      if (!(await stillHeld())) throw new ClaimLostError(itemId);
      const e = row.event;
      await this.publisher.publish(createEvent(e.type, e.data as never, e.metadata));
      await this.db.query(
        'UPDATE report_fetches SET published_at = now(), changelog_pending = false WHERE fetch_id = $1',
        [row.fetch_id],
      );
    }
    return polls + rows.length;
  }

  /** What polls decided (a ReportReady found by polling, a ReportOverdue), oldest first. */
  private async publishPolls(itemId: string, stillHeld: () => Promise<boolean>): Promise<number> {
    const rows: { poll_id: string; event: ReportReady | ReportOverdue }[] = await this.db.query(
      `SELECT poll_id, event FROM report_polls
          WHERE item_id = $1 AND published_at IS NULL
          ORDER BY finished_at, poll_id`,
      [itemId],
    );
    for (const row of rows) {
      if (!(await stillHeld())) throw new ClaimLostError(itemId);
      const e = row.event;
      await this.publisher.publish(createEvent(e.type, e.data as never, e.metadata));
      await this.db.query('UPDATE report_polls SET published_at = now() WHERE poll_id = $1', [
        row.poll_id,
      ]);
    }
    return rows.length;
  }

  /**
   * The fetch's changelog records, read back in batches. PostgreSQL writes each value (the
   * content plus item_id and fetch_id) as JSON text, so the rows are never parsed and
   * serialised again here: that was most of the fetcher's CPU.
   */
  private async publishChangelog(
    itemId: string,
    fetchId: string,
    stillHeld: () => Promise<boolean>,
  ): Promise<void> {
    let after = '';
    for (;;) {
      if (!(await stillHeld())) throw new ClaimLostError(itemId);
      const rows = await queryRows<{
        transaction_id: string;
        value: string;
        last_change: TransactionChange;
      }>(
        this.db,
        `SELECT transaction_id, last_change,
                (content || jsonb_build_object('item_id', item_id, 'fetch_id', last_fetch_id))::text
                  AS value
           FROM report_transactions
          WHERE item_id = $1 AND last_fetch_id = $2 AND transaction_id > $3
          ORDER BY transaction_id
          LIMIT $4`,
        [itemId, fetchId, after, CHANGELOG_BATCH],
      );
      if (rows.length === 0) return;
      await this.publisher.publishChangelog(
        rows.map((r) =>
          changelogRecordOf(itemId, fetchId, r.transaction_id, r.last_change, r.value),
        ),
      );
      after = rows[rows.length - 1]!.transaction_id;
      if (rows.length < CHANGELOG_BATCH) return;
    }
  }
}

/** The run's claim on the Item was taken over while it published: the new holder goes on. */
export class ClaimLostError extends Error {
  constructor(itemId: string) {
    super(`the fetch claim on item ${itemId} was taken over while publishing`);
    this.name = 'ClaimLostError';
  }
}
