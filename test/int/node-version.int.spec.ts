import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from '../support/processes';

/**
 * The README's two commands on a machine whose Node.js is too old: they stop before installing or
 * starting anything, with a message naming the version needed and how to get it. A stand-in
 * `node` first on PATH reports the version; everything else on PATH is the machine's.
 */
describe('the supported Node.js versions', () => {
  let bin: string;

  beforeAll(() => {
    bin = mkdtempSync(join(tmpdir(), 'cashflow-old-node-'));
  });
  afterAll(() => rmSync(bin, { recursive: true, force: true }));

  function runWithNode(version: string, script: string) {
    writeFileSync(join(bin, 'node'), `#!/bin/sh\necho ${version}\n`);
    chmodSync(join(bin, 'node'), 0o755);
    return spawnSync('bash', [join(REPO_ROOT, script)], {
      cwd: REPO_ROOT,
      env: { ...process.env, PATH: `${bin}:${process.env.PATH ?? ''}` },
      encoding: 'utf8',
      timeout: 30_000,
    });
  }

  it.each([
    ['scripts/test.sh', 'npm test'],
    ['scripts/run-local.sh', 'npm start'],
  ])('%s stops on Node.js 20 naming the version needed', (script, command) => {
    const run = runWithNode('20.20.2', script);
    expect(run.status).toBe(1);
    expect(run.stderr).toContain('Node.js 20.20.2 is too old');
    expect(run.stderr).toContain('needs Node.js 22.19 or newer');
    expect(run.stderr).toContain(`npx -y -p node@24 ${command}`);
    // Nothing ran after the check: no install, no broker, no database.
    expect(run.stderr).not.toMatch(/installing|local-infra|starting/i);
  });

  it('stops on a Node.js 22 older than 22.19 (undici 8 needs it)', () => {
    const run = runWithNode('22.11.0', 'scripts/test.sh');
    expect(run.status).toBe(1);
    expect(run.stderr).toContain('Node.js 22.11.0 is too old');
  });

  it.each(['', 'v20.1.0', 'banana'])('stops when Node.js says its version is "%s"', (said) => {
    const run = runWithNode(said, 'scripts/test.sh');
    expect(run.status).toBe(1);
    expect(run.stderr).toContain('cannot tell the version of this Node.js');
  });

  it('names the same minimum as package.json "engines"', () => {
    const engines = (
      JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as {
        engines: { node: string };
      }
    ).engines.node;
    expect(engines).toBe('>=22.19.0');
    const check = readFileSync(join(REPO_ROOT, 'scripts/require-node.sh'), 'utf8');
    expect(check).toContain('"$major" -lt 22');
    expect(check).toContain('"$minor" -lt 19');
  });

  it('runs on the Node.js this suite runs on (22.19+ or 24)', () => {
    const [major = 0, minor = 0] = process.versions.node.split('.').map(Number);
    expect(major > 22 || (major === 22 && minor >= 19)).toBe(true);
  });
});
