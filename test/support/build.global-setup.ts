import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

/** End-to-end tests run the compiled apps; build them first (incremental, seconds when fresh). */
export default function buildApps(): void {
  execFileSync('npm', ['run', '--silent', 'build'], {
    cwd: join(__dirname, '../..'),
    stdio: 'inherit',
  });
}
