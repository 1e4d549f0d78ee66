import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { REPO_ROOT } from './processes';

/** Runs the built `cashflow-refresh` CLI with only `env` (and PATH), feeding `stdin`. */
export function cli(args: string[], env: Record<string, string>, stdin = '') {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const child = spawn(process.execPath, [join(REPO_ROOT, 'dist/apps/cli/src/main.js'), ...args], {
      env: { PATH: process.env.PATH ?? '', ...env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(stdin);
  });
}

/** One step `refresh --wait --json` printed. */
export interface Step {
  step: string;
  request_id: string;
  detail?: Record<string, unknown>;
  [key: string]: unknown;
}

/** The steps of `refresh --wait --json`'s output, one JSON line each. */
export const steps = (stdout: string): Step[] =>
  stdout
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as Step);
