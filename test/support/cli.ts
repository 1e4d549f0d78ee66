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
