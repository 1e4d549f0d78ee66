import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parse } from 'yaml';
import { OPS_DIR, alertRules } from '../../support/ops';

const run = promisify(execFile);

/** promtool's exit status and output; a missing promtool fails with what to install. */
async function promtool(...args: string[]): Promise<{ code: number; output: string }> {
  try {
    const { stdout, stderr } = await run('promtool', args, { cwd: OPS_DIR });
    return { code: 0, output: stdout + stderr };
  } catch (error) {
    const failure = error as NodeJS.ErrnoException & {
      code?: number | string;
      stdout?: string;
      stderr?: string;
    };
    if (failure.code === 'ENOENT') {
      throw new Error(
        "promtool is missing: install Debian's `prometheus` package (apt-get install -y prometheus); scripts/test.sh installs it when run as root",
        { cause: error },
      );
    }
    return { code: Number(failure.code), output: `${failure.stdout ?? ''}${failure.stderr ?? ''}` };
  }
}

interface RulesTest {
  rule_files: string[];
  tests: {
    name?: string;
    alert_rule_test?: { alertname: string; eval_time: string; exp_alerts?: unknown[] }[];
  }[];
}

const rulesTest = parse(
  readFileSync(join(OPS_DIR, 'prometheus/rules.test.yaml'), 'utf8'),
) as RulesTest;

describe('alert rules (ops/prometheus)', () => {
  it('are valid rules', async () => {
    const result = await promtool('check', 'rules', 'prometheus/rules.yaml');
    expect(result).toEqual({ code: 0, output: expect.stringContaining('SUCCESS') });
  });

  it('pass their unit tests: each fires on its fault and stays quiet on a healthy run', async () => {
    const result = await promtool('test', 'rules', 'prometheus/rules.test.yaml');
    expect(result).toEqual({ code: 0, output: expect.stringContaining('SUCCESS') });
  });

  it('are loaded by a valid Prometheus configuration', async () => {
    const result = await promtool('check', 'config', 'prometheus/prometheus.yml');
    expect(result).toEqual({ code: 0, output: expect.stringContaining('rules found') });
  });

  it('are each tested firing, and all tested quiet on a healthy run', () => {
    expect(rulesTest.rule_files).toEqual(['rules.yaml']);
    const cases = rulesTest.tests.flatMap((t) =>
      (t.alert_rule_test ?? []).map((c) => ({ group: t.name, ...c })),
    );
    const alerts = alertRules().map((r) => r.alert);
    expect(alerts.length).toBeGreaterThan(0);
    const firing = new Set(
      cases.filter((c) => (c.exp_alerts ?? []).length > 0).map((c) => c.alertname),
    );
    expect(alerts.filter((a) => !firing.has(a))).toEqual([]);
    const healthy = cases.filter((c) => c.group === 'healthy run');
    expect(healthy.every((c) => (c.exp_alerts ?? []).length === 0)).toBe(true);
    expect(alerts.filter((a) => !healthy.some((c) => c.alertname === a))).toEqual([]);
  });

  it('each say how long, how bad, and what to do', () => {
    for (const rule of alertRules()) {
      const { alert, annotations = {}, labels = {} } = rule;
      expect({ alert, for: rule.for }).toEqual({ alert, for: expect.stringMatching(/^\d+[smh]$/) });
      expect({ alert, severity: labels.severity }).toEqual({
        alert,
        severity: expect.stringMatching(/^(critical|warning)$/),
      });
      expect({ alert, summary: annotations.summary, description: annotations.description }).toEqual(
        { alert, summary: expect.any(String), description: expect.any(String) },
      );
      // Steps to take: numbered, and at least one command or query to run.
      const runbook = annotations.runbook ?? '';
      expect({ alert, steps: (runbook.match(/^\d+\. /gm) ?? []).length >= 2 }).toEqual({
        alert,
        steps: true,
      });
      expect({
        alert,
        runnable: /npx cashflow-refresh|SELECT|curl|kafka-|docker compose/.test(runbook),
      }).toEqual({ alert, runnable: true });
    }
  });
});
