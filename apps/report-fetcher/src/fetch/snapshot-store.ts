import type { CashflowTransaction } from '@cashflow/plaid-client';

/** A query runner or an entity manager in a transaction: what the SQL here runs on. */
type Runner = { query(sql: string, parameters?: unknown[]): Promise<unknown> };

/** What one page changed. */
export interface PageChanges {
  readonly added: number;
  readonly modified: number;
}

/**
 * The stored report's SQL, run inside a fetch's one transaction (see ReportFetch): a fetch's
 * pages are written as they arrive, and only its commit makes them visible, so a fetch that
 * fails, restarts or dies leaves the stored report as it was.
 */
export class SnapshotStore {
  /**
   * Writes one page: new transactions are added, changed ones (same id, other content) modified,
   * removed ones that came back added again; a transaction whose content is unchanged is not
   * written, so storing the same snapshot again changes nothing.
   */
  async writePage(
    tx: Runner,
    itemId: string,
    fetchId: string,
    at: Date,
    transactions: readonly CashflowTransaction[],
  ): Promise<PageChanges> {
    // One row per id within the statement (Plaid should never repeat one on a page; if it does,
    // the last copy wins).
    const unique = [...new Map(transactions.map((t) => [t.transaction_id, t])).values()];
    if (unique.length === 0) return { added: 0, modified: 0 };
    const rows = (await tx.query(
      `WITH page AS (
         SELECT t->>'transaction_id' AS transaction_id, t->>'account_id' AS account_id,
                (t->>'date')::date AS date, (t->>'amount')::numeric AS amount,
                (t->>'pending')::boolean AS pending, t AS content
           FROM jsonb_array_elements($2::jsonb) AS t
       ), up AS (
         INSERT INTO report_transactions AS r
                (item_id, transaction_id, account_id, date, amount, pending, content,
                 first_seen_at, last_changed_at, removed_at, first_fetch_id, last_fetch_id,
                 last_change)
         SELECT $1, transaction_id, account_id, date, amount, pending, content,
                $3, $3, NULL, $4, $4, 'added'
           FROM page
         ON CONFLICT (item_id, transaction_id) DO UPDATE
            SET account_id = EXCLUDED.account_id, date = EXCLUDED.date,
                amount = EXCLUDED.amount, pending = EXCLUDED.pending,
                content = EXCLUDED.content, last_changed_at = EXCLUDED.last_changed_at,
                removed_at = NULL, last_fetch_id = EXCLUDED.last_fetch_id,
                last_change = CASE WHEN r.removed_at IS NULL THEN 'modified' ELSE 'added' END
          WHERE r.content IS DISTINCT FROM EXCLUDED.content OR r.removed_at IS NOT NULL
         RETURNING r.last_change
       )
       SELECT count(*) FILTER (WHERE last_change = 'added')::int AS added,
              count(*) FILTER (WHERE last_change = 'modified')::int AS modified
         FROM up`,
      [itemId, JSON.stringify(unique), at, fetchId],
    )) as { added: number; modified: number }[];
    return rows[0]!;
  }

  /**
   * Marks removed the Item's transactions dated `windowStart` or later that the fetch did not
   * see; older ones are outside the window and left alone. Returns how many.
   */
  async removeUnseen(
    tx: Runner,
    itemId: string,
    fetchId: string,
    at: Date,
    windowStart: string,
    seen: ReadonlySet<string>,
  ): Promise<number> {
    const rows = (await tx.query(
      // `<> ALL` over the array: PostgreSQL hashes it. (A NOT EXISTS over unnest() was planned
      // as a nested loop whenever the Item's rows were new to the statistics: quadratic.)
      `WITH gone AS (
         UPDATE report_transactions r
            SET removed_at = $4, last_changed_at = $4, last_fetch_id = $5, last_change = 'removed'
          WHERE r.item_id = $1 AND r.removed_at IS NULL AND r.date >= $2::date
            AND r.transaction_id <> ALL($3::text[])
         RETURNING 1
       )
       SELECT count(*)::int AS removed FROM gone`,
      [itemId, windowStart, [...seen], at, fetchId],
    )) as { removed: number }[];
    return rows[0]!.removed;
  }

  /** The Item's accounts as this fetch saw them; accounts Plaid no longer returns go. */
  async writeAccounts(
    tx: Runner,
    itemId: string,
    fetchId: string,
    at: Date,
    accounts: readonly { readonly account_id: string }[],
  ): Promise<void> {
    await tx.query(
      `INSERT INTO report_accounts (item_id, account_id, content, last_fetch_id, updated_at)
       SELECT $1, a->>'account_id', a, $2, $3 FROM jsonb_array_elements($4::jsonb) AS a
       ON CONFLICT (item_id, account_id) DO UPDATE
          SET content = EXCLUDED.content, last_fetch_id = EXCLUDED.last_fetch_id,
              updated_at = EXCLUDED.updated_at
        WHERE report_accounts.content IS DISTINCT FROM EXCLUDED.content`,
      [itemId, fetchId, at, JSON.stringify(accounts)],
    );
    await tx.query(
      'DELETE FROM report_accounts WHERE item_id = $1 AND NOT (account_id = ANY($2::text[]))',
      [itemId, accounts.map((a) => a.account_id)],
    );
  }

  async writeInsights(
    tx: Runner,
    itemId: string,
    fetchId: string,
    at: Date,
    insights: { readonly last_generated_time: string | null },
  ): Promise<void> {
    await tx.query(
      `INSERT INTO report_insights (item_id, content, last_generated_time, last_fetch_id, updated_at)
       VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (item_id) DO UPDATE
          SET content = EXCLUDED.content, last_generated_time = EXCLUDED.last_generated_time,
              last_fetch_id = EXCLUDED.last_fetch_id, updated_at = EXCLUDED.updated_at`,
      [itemId, insights, insights.last_generated_time, fetchId, at],
    );
  }
}
