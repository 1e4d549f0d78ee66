import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli } from '../support/cli';
import { KAFKA_BROKERS, createTestDatabase, uniqueTopicPrefix } from '../support/infra';
import { freePort } from '../support/ports';
import { REPO_ROOT } from '../support/processes';
import { waitFor } from '../support/wait-for';

/** `NAME=value` lines, as run-local.sh writes them. */
function envFile(path: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    const at = line.indexOf('=');
    if (at > 0) env[line.slice(0, at)] = line.slice(at + 1);
  }
  return env;
}

const refusesConnections = (port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(true));
  });

/**
 * The README's run command as a newcomer uses it: `npm start` with nothing configured brings up
 * its own Kafka broker and PostgreSQL (here in a directory and on ports of the test's own, so the
 * suite's broker and database are not involved), every app and the demo Items; a refresh of a
 * demo Item reaches fetched; Ctrl-C stops everything; a second run finds the state it left.
 */
describe('npm start', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cashflow-start-'));
  // PostgreSQL runs as the postgres user, which must be able to reach its data directory.
  chmodSync(dir, 0o755);
  let env: Record<string, string>;
  const ports: Record<string, number> = {};

  beforeAll(async () => {
    for (const name of [
      'LOCAL_KAFKA_PORT',
      'LOCAL_KAFKA_CONTROLLER_PORT',
      'LOCAL_PG_PORT',
      'REFRESH_WORKER_PORT',
      'WEBHOOK_INGRESS_PORT',
      'WEBHOOK_INGRESS_ADMIN_PORT',
      'PROJECTOR_PORT',
      'PLAID_SANDBOX_PORT',
    ]) {
      ports[name] = await freePort();
    }
    // Only what a newcomer's shell has: no KAFKA_BROKERS, no DATABASE_URL, no Plaid credentials.
    env = {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '/root',
      CASHFLOW_LOCAL_DIR: dir,
      CASHFLOW_CACHE_DIR: process.env.CASHFLOW_CACHE_DIR ?? join(REPO_ROOT, '.cache'),
      ...(process.env.JAVA_HOME ? { JAVA_HOME: process.env.JAVA_HOME } : {}),
      ...(process.env.LOCAL_PG_BINDIR ? { LOCAL_PG_BINDIR: process.env.LOCAL_PG_BINDIR } : {}),
      ...Object.fromEntries(Object.entries(ports).map(([k, v]) => [k, String(v)])),
    };
  });

  afterAll(() => {
    spawnSync('bash', [join(REPO_ROOT, 'scripts/local-infra.sh'), 'stop'], { env });
    rmSync(dir, { recursive: true, force: true });
  });

  /** Starts `npm start` in a process group of its own (as a terminal would) and waits for its summary. */
  async function npmStart(extra: Record<string, string> = {}) {
    const child = spawn('npm', ['start'], {
      cwd: REPO_ROOT,
      env: { ...env, ...extra },
      detached: true,
    });
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr.on('data', (c: Buffer) => (output += c.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    const started = Date.now();
    await Promise.race([
      waitFor(
        'npm start to print its summary',
        () => output.includes('cashflow-refresh is running') || undefined,
        240_000,
      ),
      exited.then((code) => {
        throw new Error(`npm start exited (${code}) during start-up:\n${output}`);
      }),
    ]);
    return { child, exited, output: () => output, startSeconds: (Date.now() - started) / 1000 };
  }

  /**
   * Ctrl-C: SIGINT to the whole foreground process group. The script stops the apps and the
   * infrastructure it started, then npm ends as a terminal's Ctrl-C leaves it (by SIGINT).
   */
  async function stop(run: Awaited<ReturnType<typeof npmStart>>, startedInfra = true) {
    process.kill(-run.child.pid!, 'SIGINT');
    const code = await run.exited;
    expect(code === 0 || run.child.signalCode === 'SIGINT').toBe(true);
    const output = run.output();
    if (startedInfra) {
      expect(output).toContain('[local-infra] kafka: stopped');
      expect(output).toContain('[local-infra] postgres: stopped');
    } else {
      expect(output).not.toContain('[local-infra]');
    }
    expect(output.trimEnd().endsWith('[run-local] stopped')).toBe(true);
  }

  it('brings the system up; refresh --wait on a demo Item reaches fetched; Ctrl-C stops it all', async () => {
    const run = await npmStart();
    const output = run.output();
    for (const app of [
      'plaid-sandbox',
      'refresh-worker',
      'webhook-ingress',
      'projector',
      'report-fetcher',
    ]) {
      expect(output).toContain(app);
    }
    expect(output).toContain('item-demo-ready');
    expect(output).toContain('--wait');

    // What the summary tells the newcomer to do in another terminal.
    const cliEnv = { ...envFile(join(dir, 'secrets.env')), ...envFile(join(dir, 'cli.env')) };
    const refresh = await cli(['refresh', 'item-demo-ready', '--wait', '--json'], cliEnv);
    expect(refresh.code).toBe(0);
    const steps = refresh.stdout
      .trim()
      .split('\n')
      .map((line) => (JSON.parse(line) as { step: string }).step);
    // npm start runs the report fetcher, so --wait goes on to the stored report.
    expect(steps).toEqual(['requested', 'accepted', 'ready', 'fetched']);
    const failed = await cli(['refresh', 'item-demo-login-required', '--wait'], cliEnv);
    expect(failed.code).toBe(3);
    expect(failed.stdout).toContain('ITEM_LOGIN_REQUIRED');

    await stop(run);
    for (const port of Object.values(ports)) expect(await refusesConnections(port)).toBe(true);

    // A second run starts on the state the first left: the projection remembers the refresh.
    const again = await npmStart();
    process.stdout.write(`second npm start: ${again.startSeconds.toFixed(1)} s to its summary\n`);
    const status = await cli(['status', 'item-demo-ready'], cliEnv);
    expect(status.code).toBe(0);
    expect(status.stdout).toContain('item-demo-ready: ready');
    await stop(again);
  }, 600_000);

  it('with KAFKA_BROKERS and DATABASE_URL set, starts neither and runs the apps against them', async () => {
    const db = await createTestDatabase();
    const elsewhere = mkdtempSync(join(tmpdir(), 'cashflow-start-external-'));
    try {
      const run = await npmStart({
        KAFKA_BROKERS: KAFKA_BROKERS.join(','),
        DATABASE_URL: db.url,
        KAFKA_TOPIC_PREFIX: uniqueTopicPrefix(),
        CASHFLOW_LOCAL_DIR: elsewhere,
      });
      expect(run.output()).not.toContain('[local-infra]');
      expect(run.output()).toContain(`Kafka            ${KAFKA_BROKERS.join(',')}`);
      const cliEnv = {
        ...envFile(join(elsewhere, 'secrets.env')),
        ...envFile(join(elsewhere, 'cli.env')),
      };
      expect(cliEnv.DATABASE_URL).toBe(db.url);
      const refresh = await cli(['refresh', 'item-demo-ready', '--wait'], cliEnv);
      expect(refresh.code).toBe(0);
      await stop(run, false);
    } finally {
      rmSync(elsewhere, { recursive: true, force: true });
      await db.drop();
    }
  }, 300_000);
});
