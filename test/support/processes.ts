import { spawn, type ChildProcess } from 'node:child_process';
import { basename, dirname, join } from 'node:path';
import { waitFor } from './wait-for';

/** The checkout: two levels up from here, or three when compiled into dist/ (a bench using it). */
const up = join(__dirname, '../..');
export const REPO_ROOT = basename(up) === 'dist' ? dirname(up) : up;

export interface AppProcess {
  readonly child: ChildProcess;
  readonly stdout: () => string;
  readonly stderr: () => string;
  /** Resolves with the exit code (or the signal's name). */
  readonly exited: Promise<number | string>;
  stop(signal?: NodeJS.Signals): Promise<number | string>;
}

/** Runs a built app (`dist/apps/<name>/src/main.js`) as its own process. */
export function startApp(name: string, env: Record<string, string>): AppProcess {
  const child = spawn(process.execPath, [join(REPO_ROOT, 'dist/apps', name, 'src/main.js')], {
    cwd: REPO_ROOT,
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
  const exited = new Promise<number | string>((resolve) =>
    child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')),
  );
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    exited,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

/** Waits until GET url answers 200 and returns its JSON, failing early if the process died. */
export async function waitForHealthy(
  app: AppProcess,
  url: string,
  timeoutMs = 30_000,
): Promise<unknown> {
  return waitFor(
    `${url} to answer 200`,
    async () => {
      if (app.child.exitCode !== null) {
        throw new Error(
          `process exited with ${app.child.exitCode}: ${app.stderr() || app.stdout()}`,
        );
      }
      const response = await fetch(url).catch(() => undefined);
      return response?.status === 200 ? await response.json() : undefined;
    },
    timeoutMs,
    200,
  );
}
