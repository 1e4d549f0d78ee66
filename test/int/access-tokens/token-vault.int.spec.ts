import { TokenCipher, TokenVault } from '@cashflow/access-tokens';
import { createDataSource, runMigrations } from '@cashflow/persistence';
import { randomBytes } from 'node:crypto';
import type { DataSource } from 'typeorm';
import { createTestDatabase, type TestDatabase } from '../../support/infra';

const OLD_TOKEN = 'access-sandbox-00000000-0000-4000-8000-000000000001';
const ROTATED_TOKEN = 'access-sandbox-00000000-0000-4000-8000-000000000002';

/**
 * `tokens reencrypt` runs while the workers keep serving: a token can be rotated between the
 * moment re-encryption reads it and the moment it writes it back. During a key rollout a worker
 * may still encrypt under the old key, so the row's key id alone cannot tell that it changed.
 */
describe('TokenVault: re-encryption racing a rotation', () => {
  const keys = new Map([
    ['k1', randomBytes(32)],
    ['k2', randomBytes(32)],
  ]);
  const oldKeyCipher = new TokenCipher(keys, 'k1');
  const newKeyCipher = new TokenCipher(keys, 'k2');
  let database: TestDatabase;
  let db: DataSource;

  beforeAll(async () => {
    database = await createTestDatabase();
    await runMigrations({ url: database.url, applicationName: 'test' });
    db = await createDataSource({ url: database.url, applicationName: 'test' }).initialize();
  });
  afterAll(async () => {
    await db?.destroy();
    await database?.drop();
  });

  /** `db`, but `beforeUpdate` runs (once) just before the first UPDATE of a token goes out. */
  function updateInterceptedBy(beforeUpdate: () => Promise<unknown>): DataSource {
    let done = false;
    return new Proxy(db, {
      get(target, property, receiver) {
        if (property !== 'query') return Reflect.get(target, property, receiver) as unknown;
        return async (sql: string, params?: unknown[]) => {
          if (!done && /^\s*UPDATE item_access_tokens/i.test(sql)) {
            done = true;
            await beforeUpdate();
          }
          return target.query(sql, params);
        };
      },
    });
  }

  it('keeps a token rotated under the old key while re-encryption ran', async () => {
    const itemId = `item-${randomBytes(4).toString('hex')}`;
    const oldKeyWorker = new TokenVault(db, oldKeyCipher);
    await oldKeyWorker.put(itemId, OLD_TOKEN, 'tests');

    const reencrypting = new TokenVault(
      updateInterceptedBy(() => oldKeyWorker.put(itemId, ROTATED_TOKEN, 'tests')),
      newKeyCipher,
    );
    await reencrypting.reencryptAll();

    const vault = new TokenVault(db, newKeyCipher);
    expect(await vault.reveal(itemId)).toBe(ROTATED_TOKEN);
    // Re-encryption read the rotated token again and finished the job.
    expect((await vault.describe(itemId))?.key_id).toBe('k2');
  });

  it('does not bring back a token removed while re-encryption ran', async () => {
    const itemId = `item-${randomBytes(4).toString('hex')}`;
    const oldKeyWorker = new TokenVault(db, oldKeyCipher);
    await oldKeyWorker.put(itemId, OLD_TOKEN, 'tests');

    const reencrypting = new TokenVault(
      updateInterceptedBy(() => oldKeyWorker.remove(itemId)),
      newKeyCipher,
    );
    await reencrypting.reencryptAll();
    expect(await new TokenVault(db, newKeyCipher).describe(itemId)).toBeUndefined();
  });
});
