import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { cli } from '../support/cli';
import { startWorker, workerWorld, type Worker, type WorkerWorld } from '../support/refresh-worker';

describe('cashflow-refresh items and tokens', () => {
  let world: WorkerWorld;
  let worker: Worker;
  let env: Record<string, string>;

  beforeAll(async () => {
    world = await workerWorld();
    worker = await startWorker(world);
    env = { REFRESH_WORKER_URL: worker.url, ADMIN_API_TOKEN: world.secrets.adminToken };
  });
  afterAll(async () => {
    await worker.close();
    await world.close();
  });

  it('registers a token read from standard input, shows it without the token, removes it', async () => {
    const item = await world.sandbox.createItem({ webhook: null });
    const added = await cli(['items', 'add', item.item_id], env, `${item.access_token}\n`);
    expect(added).toMatchObject({
      code: 0,
      stdout: `registered token for ${item.item_id} (key test-key)\n`,
    });

    const request = await world.request(item.item_id);
    expect((await world.outcomeOf(request.metadata.id)).type).toBe('RefreshAccepted');

    const shown = await cli(['items', 'show', item.item_id, '--json'], env);
    expect(shown.code).toBe(0);
    expect(JSON.parse(shown.stdout)).toMatchObject({
      item_id: item.item_id,
      registered_by: 'tests',
    });
    expect(shown.stdout).not.toContain(item.access_token);

    expect((await cli(['items', 'remove', item.item_id], env)).code).toBe(0);
    const again = await cli(['items', 'remove', item.item_id], env);
    expect(again.code).toBe(1);
    expect(again.stderr).toBe(`error: no access token for item ${item.item_id}\n`);
  });

  it('says in one line what is missing', async () => {
    const noToken = await cli(
      ['items', 'add', 'item-x'],
      { REFRESH_WORKER_URL: worker.url },
      'access-sandbox-abc\n',
    );
    expect(noToken.code).toBe(1);
    expect(noToken.stderr).toMatch(/^error: ADMIN_API_TOKEN is not set/);
    const noStdin = await cli(['items', 'add', 'item-x'], env, '');
    expect(noStdin.stderr).toMatch(/^error: no access token on standard input/);
    const badToken = await cli(
      ['items', 'add', 'item-x'],
      { ...env, ADMIN_API_TOKEN: 'x'.repeat(30) },
      'access-sandbox-abc\n',
    );
    expect(badToken).toMatchObject({ code: 1, stderr: 'error: unknown token\n' });
  });

  it('re-encrypts stored tokens under a new key', async () => {
    const item = await world.sandbox.createItem({ webhook: null });
    await worker.registerToken(item.item_id, item.access_token);
    const keys = `${world.secrets.env.TOKEN_ENCRYPTION_KEYS},next-key:${randomBytes(32).toString('base64')}`;
    const result = await cli(['tokens', 'reencrypt'], {
      DATABASE_URL: world.db.url,
      TOKEN_ENCRYPTION_KEYS: keys,
      TOKEN_ENCRYPTION_KEY_ID: 'next-key',
    });
    expect(result.stderr).toBe('');
    expect(result.stdout).toMatch(/^re-encrypted \d+ token\(s\) under key next-key\n$/);

    const client = new Client({ connectionString: world.db.url });
    await client.connect();
    try {
      const { rows } = await client.query<{ key_id: string }>(
        'SELECT DISTINCT key_id FROM item_access_tokens',
      );
      expect(rows.map((r) => r.key_id)).toEqual(['next-key']);
    } finally {
      await client.end();
    }
  });
});
