import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { freePort } from '../support/ports';
import { REPO_ROOT } from '../support/processes';

const asRoot = process.getuid?.() === 0;

/**
 * The most common fresh-machine layout: root, with the checkout under /root (mode 700). The
 * postgres user cannot enter it, so PostgreSQL's cluster has to live elsewhere, one per checkout,
 * and the script has to say where. A private state dir under a mode-700 dir stands in for the
 * checkout; Kafka is not involved, and the ports are the test's own.
 */
(asRoot ? describe : describe.skip)(
  'local-infra.sh as root, state dir the postgres user cannot reach',
  () => {
    // mkdtemp makes the dir mode 700: the postgres user cannot enter it.
    const closed = mkdtempSync(join(tmpdir(), 'cashflow-closed-'));
    const stateDir = join(closed, 'checkout', '.local');
    let env: NodeJS.ProcessEnv;

    const infra = (...args: string[]) =>
      spawnSync('bash', [join(REPO_ROOT, 'scripts/local-infra.sh'), ...args], {
        env,
        encoding: 'utf8',
      });

    beforeAll(async () => {
      env = {
        ...process.env,
        CASHFLOW_LOCAL_DIR: stateDir,
        LOCAL_PG_PORT: String(await freePort()),
      };
    });
    afterAll(() => {
      infra('reset');
      rmSync(closed, { recursive: true, force: true });
    });

    it('starts PostgreSQL with its cluster outside the state dir, says where, and reset removes it', async () => {
      const started = infra('start', 'postgres');
      // The exit status with the script's output, so a failure shows why.
      expect(`${started.status}\n${started.stderr}`).toMatch(/^0\n/);
      const where = /postgres: cluster in (\S+), outside/.exec(started.stderr)?.[1];
      expect(where).toMatch(/^\/var\/lib\/cashflow-refresh\/[0-9a-f]{16}\/postgres$/);
      expect(started.stderr).toContain(`user 'postgres' cannot enter ${closed}`);
      expect(readFileSync(join(where!, '..', 'state-dir'), 'utf8').trim()).toBe(stateDir);
      expect(existsSync(join(where!, 'data', 'PG_VERSION'))).toBe(true);

      const sql = new Client({
        connectionString: `postgres://cashflow:cashflow@127.0.0.1:${env.LOCAL_PG_PORT}/cashflow`,
      });
      await sql.connect();
      try {
        expect((await sql.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
      } finally {
        await sql.end();
      }

      // Every later command finds the same cluster.
      expect(infra('status', 'postgres').stdout).toContain(`data in ${join(where!, 'data')}`);
      expect(infra('stop', 'postgres').status).toBe(0);
      expect(infra('status', 'postgres').status).toBe(3);
      expect(infra('start', 'postgres').status).toBe(0);
      expect(infra('reset').status).toBe(0);
      expect(existsSync(where!)).toBe(false);
      expect(existsSync(stateDir)).toBe(false);
    });
  },
);
