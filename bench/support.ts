import { runMigrations } from '@cashflow/persistence';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { Client } from 'pg';

export const ROOT = join(__dirname, '../..');

export { freePort } from '../test/support/ports';

/** Starts the local Kafka broker and PostgreSQL unless running; returns what it started. */
export function ensureInfra(): string[] {
  const started: string[] = [];
  for (const service of ['kafka', 'postgres']) {
    const status = spawnSync('bash', [join(ROOT, 'scripts/local-infra.sh'), 'status', service]);
    if (status.status !== 0) {
      const start = spawnSync('bash', [join(ROOT, 'scripts/local-infra.sh'), 'start', service], {
        stdio: 'inherit',
      });
      if (start.status !== 0) throw new Error(`could not start ${service}`);
      started.push(service);
    }
  }
  return started;
}

export function stopInfra(services: string[]): void {
  for (const service of services)
    spawnSync('bash', [join(ROOT, 'scripts/local-infra.sh'), 'stop', service], {
      stdio: 'inherit',
    });
}

export interface Proc {
  readonly child: ChildProcess;
  readonly output: () => string;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

const started: Proc[] = [];

/** Kills whatever this run started and has not stopped (after a failure). */
export async function stopAll(): Promise<void> {
  await Promise.all(started.map((p) => p.stop('SIGKILL')));
}

/** Runs a compiled entry point (path under dist/) as its own process. */
export function run(entry: string, env: Record<string, string>, nodeFlags: string[] = []): Proc {
  const child = spawn(process.execPath, [...nodeFlags, join(ROOT, 'dist', entry)], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-20_000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const proc: Proc = {
    child,
    output: () => output,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exited;
    },
  };
  started.push(proc);
  return proc;
}

export async function waitUntil<T>(
  what: string,
  probe: () => Promise<T | undefined> | T | undefined,
  timeoutMs: number,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await Promise.resolve()
      .then(probe)
      .catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export async function waitForHttp(url: string, proc: Proc, timeoutMs = 60_000): Promise<void> {
  await waitUntil(
    url,
    async () => {
      if (proc.child.exitCode !== null) throw new Error(`process exited: ${proc.output()}`);
      const response = await fetch(url).catch(() => undefined);
      return response?.ok ? true : undefined;
    },
    timeoutMs,
  );
}

/**
 * Samples a process's resident set size (`peakMb` is the largest seen, `hwmMb` the kernel's own
 * high-water mark, VmHWM, which no sampling interval can miss) and the CPU time it has used
 * (`cpuSeconds`, user + system since the process started, as of the last sample;
 * `cpuSecondsSinceStart`, the same since the sampler started, which leaves out a process's own
 * start-up when it is sampled once ready).
 */
export function processSampler(pid: number) {
  let peak = 0;
  let hwm = 0;
  let cpu = 0;
  const ticksPerSecond = 100; // USER_HZ on Linux
  const sample = () => {
    try {
      const status = readFileSync(`/proc/${pid}/status`, 'utf8');
      const match = /VmRSS:\s+(\d+) kB/.exec(status);
      if (match) peak = Math.max(peak, Number(match[1]) / 1024);
      const high = /VmHWM:\s+(\d+) kB/.exec(status);
      if (high) hwm = Math.max(hwm, Number(high[1]) / 1024);
      // Fields 14 and 15 of /proc/<pid>/stat, counted after the command name's closing ')'.
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      cpu = (Number(fields[11]) + Number(fields[12])) / ticksPerSecond;
    } catch {
      // The process has exited.
    }
  };
  sample();
  const atStart = cpu;
  const timer = setInterval(sample, 200);
  return {
    stop: () => {
      clearInterval(timer);
      sample();
    },
    get peakMb() {
      return Math.round(peak);
    },
    get hwmMb() {
      return Math.round(hwm);
    },
    get cpuSeconds() {
      return Math.round(cpu * 10) / 10;
    },
    /** The CPU the process had used when the sampler started (its start-up, when sampled once ready). */
    get startCpuSeconds() {
      return Math.round(atStart * 10) / 10;
    },
    get cpuSecondsSinceStart() {
      return Math.round((cpu - atStart) * 10) / 10;
    },
  };
}

/**
 * CPU seconds used by the machine's shared services while a bench phase runs: every PostgreSQL
 * process (backends come and go; one that exits is counted through its parent's reaped-children
 * time), every Kafka broker (a `java` process running kafka), and the whole machine (/proc/stat).
 * `stop()` returns the seconds used since the call, so a ceiling and the work it bounds can be
 * compared for what the database and the broker cost, not only for rows per second.
 */
export function sharedCpu() {
  const read = () => {
    let postgres = 0;
    let kafka = 0;
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      try {
        const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
        const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
        const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        const own = (Number(fields[11]) + Number(fields[12])) / 100;
        const reaped = (Number(fields[13]) + Number(fields[14])) / 100;
        if (comm === 'postgres') postgres += own + reaped;
        else if (
          comm === 'java' &&
          readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes('kafka')
        )
          kafka += own;
      } catch {
        // Gone meanwhile.
      }
    }
    // The first line of /proc/stat: the machine's ticks per state; all but idle and iowait.
    const [, ...ticks] = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!.trim().split(/\s+/);
    const n = ticks.map(Number);
    const busy = n.reduce((sum, t) => sum + t, 0) - (n[3] ?? 0) - (n[4] ?? 0);
    return { postgres, kafka, machine: busy / 100 };
  };
  const before = read();
  const round1 = (x: number) => Math.round(x * 10) / 10;
  return {
    stop() {
      const after = read();
      return {
        postgres_cpu_s: round1(after.postgres - before.postgres),
        kafka_cpu_s: round1(after.kafka - before.kafka),
        machine_busy_cpu_s: round1(after.machine - before.machine),
      };
    },
  };
}

export function percentile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

export function machine() {
  const cpu = cpus();
  return {
    cpus: cpu.length,
    cpu_model: cpu[0]?.model ?? 'unknown',
    memory_gib: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
  };
}

/** Prints rows as an aligned text table. */
export function table(rows: (string | number)[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => String(r[i]).length)));
  return rows.map((r) => r.map((c, i) => String(c).padEnd(widths[i]!)).join('  ')).join('\n');
}

/** Writes a run's results to bench/results/<date>-<name>[-quick].json and says where. */
export function writeResults(name: string, quick: boolean, result: { date: string }): string {
  const dir = join(ROOT, 'bench/results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${result.date.slice(0, 10)}-${name}${quick ? '-quick' : ''}.json`);
  writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
  process.stdout.write(`written to ${file}\n`);
  return file;
}

/** The local PostgreSQL's app database; bench databases are created beside it. */
export const ADMIN_DB =
  process.env.DATABASE_URL ?? 'postgres://cashflow:cashflow@127.0.0.1:15432/cashflow';

/** A fresh, migrated database for one bench run; returns its URL. */
export async function benchDatabase(): Promise<string> {
  const name = `cashflow_bench_${randomBytes(4).toString('hex')}`;
  const admin = new Client({ connectionString: ADMIN_DB });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(ADMIN_DB);
  url.pathname = `/${name}`;
  await runMigrations({ url: url.toString(), applicationName: 'bench' });
  return url.toString();
}

export async function dropBenchDatabase(url: string): Promise<void> {
  const admin = new Client({ connectionString: ADMIN_DB });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS ${new URL(url).pathname.slice(1)} WITH (FORCE)`);
  await admin.end();
}

/** The topic prefixes this run made, and the brokers they were made on. */
const prefixes: { brokers: string[]; prefix: string }[] = [];

/**
 * A fresh topic prefix for this run (`<kind>-<hex>.`); runBench deletes every topic under it when
 * the run ends, failed or not. A bench makes 40 to 100 partitions a run, and a local broker left
 * with thousands (its heap is 512 MB) ran out of memory.
 */
export function benchPrefix(brokers: string | readonly string[], kind = 'bench'): string {
  const prefix = `${kind}-${randomBytes(4).toString('hex')}.`;
  prefixes.push({
    brokers: typeof brokers === 'string' ? brokers.split(',') : [...brokers],
    prefix,
  });
  return prefix;
}

/** Deletes the topics of every prefix this run made; a broker already gone is passed over. */
export async function deleteBenchTopics(): Promise<void> {
  for (const { brokers, prefix } of prefixes.splice(0)) {
    const admin = new Kafka({
      brokers,
      clientId: 'bench-cleanup',
      connectionTimeout: 2000,
      retry: { retries: 2 },
      logLevel: logLevel.NOTHING,
    }).admin();
    try {
      await admin.connect();
      const topics = (await admin.listTopics()).filter((t) => t.startsWith(prefix));
      if (topics.length > 0) await admin.deleteTopics({ topics, timeout: 30_000 });
    } catch (error) {
      process.stderr.write(`could not delete the topics ${prefix}*: ${String(error)}\n`);
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
  }
}

/**
 * Runs a bench's main: exit 0 when done, 1 with the stack when it failed; either way, the topics
 * it made are deleted first.
 */
export function runBench(main: () => Promise<void>): void {
  main()
    .finally(deleteBenchTopics)
    .then(
      () => process.exit(0),
      (error: unknown) => {
        process.stderr.write(`bench failed: ${(error as Error).stack ?? String(error)}\n`);
        process.exit(1);
      },
    );
}
