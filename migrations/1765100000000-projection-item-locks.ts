import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * projection_item_locks: one row per Item the projection has seen, there only to be locked. A
 * projector transaction inserts or locks the rows of the Items it changes (one upsert that
 * updates nothing, in key order), so transactions of several partitions, of projector replicas
 * or of a rebuild beside the live projector never fold one Item at the same time.
 *
 * Row locks live in the rows themselves. The transaction-scoped advisory locks used before took
 * one entry of PostgreSQL's shared lock table per Item, and that table holds
 * max_locks_per_transaction entries per server process for the whole server: two transactions
 * of a few thousand Items each (a replica or a rebuild catching up) filled it, and every
 * session needing a lock then failed with "out of shared memory".
 *
 * Projectors before this migration and after it do not exclude each other: stop the old ones
 * before a new one starts (README: Several replicas).
 */
export class ProjectionItemLocks1765100000000 implements MigrationInterface {
  name = 'ProjectionItemLocks1765100000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`CREATE TABLE projection_item_locks (item_id text PRIMARY KEY)`);
    // The Items already projected, so their first transaction after the upgrade only locks.
    await q.query(
      `INSERT INTO projection_item_locks (item_id) SELECT item_id FROM item_refresh_state`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('DROP TABLE projection_item_locks');
  }
}
