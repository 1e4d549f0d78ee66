import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Plaid access tokens, encrypted at rest (AES-256-GCM, item_id as associated data) and keyed by
 * item_id. `key_id` names the encryption key so keys can be rotated; the token itself is never
 * stored in clear.
 */
export class ItemAccessTokens1764100000000 implements MigrationInterface {
  name = 'ItemAccessTokens1764100000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE item_access_tokens (
        item_id       text        PRIMARY KEY,
        key_id        text        NOT NULL,
        iv            bytea       NOT NULL,
        ciphertext    bytea       NOT NULL,
        auth_tag      bytea       NOT NULL,
        registered_by text        NOT NULL,
        created_at    timestamptz NOT NULL DEFAULT now(),
        updated_at    timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`CREATE INDEX item_access_tokens_key_id ON item_access_tokens (key_id)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('DROP TABLE item_access_tokens');
  }
}
