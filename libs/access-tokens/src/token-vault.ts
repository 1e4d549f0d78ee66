import { queryRows } from '@cashflow/persistence';
import type { DataSource } from 'typeorm';
import type { TokenCipher } from './token-cipher';

/** Plaid access tokens look like access-<environment>-<uuid>. */
export const ACCESS_TOKEN_PATTERN = /^access-[a-z]+-[A-Za-z0-9-]{1,200}$/;

export interface TokenRecord {
  readonly item_id: string;
  readonly key_id: string;
  readonly registered_by: string;
  readonly created_at: string;
  readonly updated_at: string;
}

interface Row {
  item_id: string;
  key_id: string;
  iv: Buffer;
  ciphertext: Buffer;
  auth_tag: Buffer;
  registered_by: string;
  created_at: Date;
  updated_at: Date;
}

const describe = (row: Row): TokenRecord => ({
  item_id: row.item_id,
  key_id: row.key_id,
  registered_by: row.registered_by,
  created_at: row.created_at.toISOString(),
  updated_at: row.updated_at.toISOString(),
});

/** Access tokens by item_id, encrypted at rest in PostgreSQL. Reads return metadata only. */
export class TokenVault {
  constructor(
    private readonly db: DataSource,
    private readonly cipher: TokenCipher,
  ) {}

  /** Registers or replaces (rotates) the Item's token. */
  async put(itemId: string, token: string, registeredBy: string): Promise<TokenRecord> {
    const sealed = this.cipher.seal(itemId, token);
    const rows = await queryRows<Row>(
      this.db,
      `INSERT INTO item_access_tokens (item_id, key_id, iv, ciphertext, auth_tag, registered_by)
       VALUES ($1, $2, $3, $4, $5, $6)
       ON CONFLICT (item_id) DO UPDATE SET key_id = EXCLUDED.key_id, iv = EXCLUDED.iv,
         ciphertext = EXCLUDED.ciphertext, auth_tag = EXCLUDED.auth_tag,
         registered_by = EXCLUDED.registered_by, updated_at = now()
       RETURNING *`,
      [itemId, sealed.keyId, sealed.iv, sealed.ciphertext, sealed.authTag, registeredBy],
    );
    return describe(rows[0]!);
  }

  async describe(itemId: string): Promise<TokenRecord | undefined> {
    const rows = await queryRows<Row>(
      this.db,
      'SELECT * FROM item_access_tokens WHERE item_id = $1',
      [itemId],
    );
    return rows[0] ? describe(rows[0]) : undefined;
  }

  /** The decrypted token, for the Plaid call only. */
  async reveal(itemId: string): Promise<string | undefined> {
    const rows = await queryRows<Row>(
      this.db,
      'SELECT * FROM item_access_tokens WHERE item_id = $1',
      [itemId],
    );
    const row = rows[0];
    if (!row) return undefined;
    return this.cipher.open(itemId, {
      keyId: row.key_id,
      iv: row.iv,
      ciphertext: row.ciphertext,
      authTag: row.auth_tag,
    });
  }

  /**
   * Every registered token, decrypted: for `cashflow-refresh check`, which searches the topics
   * and logs for them. The caller must never print or log what it gets.
   */
  async revealAll(): Promise<Map<string, string>> {
    const rows = await queryRows<Row>(this.db, 'SELECT * FROM item_access_tokens');
    return new Map(
      rows.map((row) => [
        row.item_id,
        this.cipher.open(row.item_id, {
          keyId: row.key_id,
          iv: row.iv,
          ciphertext: row.ciphertext,
          authTag: row.auth_tag,
        }),
      ]),
    );
  }

  async remove(itemId: string): Promise<boolean> {
    const rows = await queryRows<unknown>(
      this.db,
      'DELETE FROM item_access_tokens WHERE item_id = $1 RETURNING item_id',
      [itemId],
    );
    return rows.length > 0;
  }

  /** Re-encrypts every token not under the current key (after adding a new key). */
  async reencryptAll(): Promise<number> {
    const rows = await queryRows<Row>(
      this.db,
      'SELECT * FROM item_access_tokens WHERE key_id <> $1',
      [this.cipher.currentKeyId],
    );
    for (const row of rows) {
      const token = this.cipher.open(row.item_id, {
        keyId: row.key_id,
        iv: row.iv,
        ciphertext: row.ciphertext,
        authTag: row.auth_tag,
      });
      const sealed = this.cipher.seal(row.item_id, token);
      await this.db.query(
        `UPDATE item_access_tokens SET key_id = $2, iv = $3, ciphertext = $4, auth_tag = $5, updated_at = now()
         WHERE item_id = $1 AND key_id = $6`,
        [row.item_id, sealed.keyId, sealed.iv, sealed.ciphertext, sealed.authTag, row.key_id],
      );
    }
    return rows.length;
  }
}
