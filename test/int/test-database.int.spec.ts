import { Client } from 'pg';
import { DATABASE_URL, createTestDatabase, uniqueSuffix } from '../support/infra';

/**
 * The tests' throw-away databases are dropped WITH (FORCE), which terminates whatever is still
 * connected. A backend of another role (an autovacuum worker busy on the database, or a read
 * role's session) made the drop fail with "must be a member of the role whose process is being
 * terminated or member of pg_signal_backend": a fresh-clone run failed so in pace.int.spec.ts.
 */
describe('a test database', () => {
  it('is dropped while a session of another role is still connected to it', async () => {
    const db = await createTestDatabase();
    const role = `cashflow_test_other_${uniqueSuffix()}`;
    const password = uniqueSuffix();
    const admin = new Client({ connectionString: DATABASE_URL });
    await admin.connect();
    let other: Client | undefined;
    try {
      await admin.query(`CREATE ROLE ${role} LOGIN PASSWORD '${password}'`);
      const url = new URL(db.url);
      url.username = role;
      url.password = password;
      other = new Client({ connectionString: url.toString() });
      other.on('error', () => undefined); // terminated by the drop
      await other.connect();
      await other.query('SELECT 1');
      await db.drop();
      const left = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [
        new URL(db.url).pathname.slice(1),
      ]);
      expect(left.rowCount).toBe(0);
    } finally {
      await other?.end().catch(() => undefined);
      await db.drop().catch(() => undefined);
      await admin.query(`DROP ROLE IF EXISTS ${role}`);
      await admin.end();
    }
  });
});
