import { Batched, queryRows } from '@cashflow/persistence';
import type { DataSource } from 'typeorm';
import type { TokenCipher } from './token-cipher';

/** Passes `reencryptAll` makes over tokens that changed while it read them. */
const REENCRYPT_PASSES = 5;

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

  /**
   * Rows for the Items of calls that want their tokens at the same moment, read in one query: a
   * busy worker starts hundreds of calls a second, and a query each was over half its statements.
   */
  private readonly sealedRows = new Batched<string, Row | undefined>(async (itemIds) => {
    const rows = await queryRows<Row>(
      this.db,
      'SELECT * FROM item_access_tokens WHERE item_id = ANY($1)',
      [[...new Set(itemIds)]],
    );
    const byItem = new Map(rows.map((r) => [r.item_id, r]));
    return itemIds.map((id) => byItem.get(id));
  });

  /** The decrypted token, for the Plaid call only. */
  async reveal(itemId: string): Promise<string | undefined> {
    const row = await this.sealedRows.call(itemId);
    if (!row) return undefined;
    // Decrypted for this caller alone: a token that cannot be opened fails its own call only.
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

  /**
   * Re-encrypts every token not under the current key (after adding a new key); returns how
   * many it re-encrypted. Workers keep rotating tokens meanwhile, possibly under the old key
   * during a rollout, so each write is guarded on the sealed value it read (IV, ciphertext and
   * tag), not on the key id: a token replaced in between is read again, never overwritten with
   * the token it replaced. Rows still changing after a few passes are left for the next run.
   */
  async reencryptAll(): Promise<number> {
    let reencrypted = 0;
    let rows = await queryRows<Row>(
      this.db,
      'SELECT * FROM item_access_tokens WHERE key_id <> $1',
      [this.cipher.currentKeyId],
    );
    for (let pass = 0; pass < REENCRYPT_PASSES && rows.length > 0; pass++) {
      const changed: string[] = [];
      for (const row of rows) {
        if (await this.reencrypt(row)) reencrypted += 1;
        else changed.push(row.item_id);
      }
      rows =
        changed.length === 0
          ? []
          : await queryRows<Row>(
              this.db,
              'SELECT * FROM item_access_tokens WHERE item_id = ANY($1) AND key_id <> $2',
              [changed, this.cipher.currentKeyId],
            );
    }
    return reencrypted;
  }

  /** False when the row no longer holds what was read (rotated or removed meanwhile). */
  private async reencrypt(row: Row): Promise<boolean> {
    const token = this.cipher.open(row.item_id, {
      keyId: row.key_id,
      iv: row.iv,
      ciphertext: row.ciphertext,
      authTag: row.auth_tag,
    });
    const sealed = this.cipher.seal(row.item_id, token);
    const updated = await queryRows<{ item_id: string }>(
      this.db,
      `UPDATE item_access_tokens SET key_id = $2, iv = $3, ciphertext = $4, auth_tag = $5, updated_at = now()
       WHERE item_id = $1 AND iv = $6 AND ciphertext = $7 AND auth_tag = $8
       RETURNING item_id`,
      [
        row.item_id,
        sealed.keyId,
        sealed.iv,
        sealed.ciphertext,
        sealed.authTag,
        row.iv,
        row.ciphertext,
        row.auth_tag,
      ],
    );
    return updated.length > 0;
  }
}
