import { ALL_VARIABLES } from '@cashflow/config';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { loadProjectorConfig } from '../../apps/projector/src/config';
import { loadPlaidSandboxConfig } from '../../apps/plaid-sandbox/src/config';
import { loadRefreshWorkerConfig } from '../../apps/refresh-worker/src/config';
import { loadReportFetcherConfig } from '../../apps/report-fetcher/src/config';
import { loadWebhookIngressConfig } from '../../apps/webhook-ingress/src/config';

interface Service {
  environment?: Record<string, string | number>;
  command?: string[];
  profiles?: string[];
  volumes?: string[];
}
const root = join(__dirname, '../..');
const compose = parse(readFileSync(join(root, 'docker-compose.yml'), 'utf8'), {
  merge: true,
}) as { services: Record<string, Service> };

/** Values a user must supply (`${X:?message}` in the file), as a user would. */
const USER_SUPPLIED: Record<string, string> = {
  TOKEN_ENCRYPTION_KEYS: `main:${Buffer.alloc(32, 7).toString('base64')}`,
  ADMIN_API_TOKENS: `ops:${'t'.repeat(32)}`,
  PROJECTOR_API_TOKENS: `analytics:${'a'.repeat(32)}`,
};

/**
 * The environment compose would give a service when the user sets only what is required:
 * `${X:-d}` -> d, `${X:?message}` -> the user's value.
 */
function environmentOf(service: string): Record<string, string> {
  const env = compose.services[service]?.environment ?? {};
  return Object.fromEntries(
    Object.entries(env).map(([k, v]) => [
      k,
      String(v)
        .replace(/\$\{([A-Z_]+):\?[^}]*\}/g, (_, name: string) => USER_SUPPLIED[name] ?? '')
        .replace(/\$\{[A-Z_]+:-([^}]*)\}/g, '$1'),
    ]),
  );
}

const loaders = {
  'refresh-worker': loadRefreshWorkerConfig,
  'webhook-ingress': loadWebhookIngressConfig,
  projector: loadProjectorConfig,
  'plaid-sandbox': loadPlaidSandboxConfig,
  'report-fetcher': loadReportFetcherConfig,
};

describe('docker-compose.yml', () => {
  it.each(Object.keys(loaders))('gives %s a configuration its app accepts', (service) => {
    const load = loaders[service as keyof typeof loaders];
    expect(() => load(environmentOf(service))).not.toThrow();
  });

  it.each([
    ['refresh-worker', ['--heap-growing-percent=20', '--max-semi-space-size=32']],
    ['projector', ['--max-semi-space-size=16', '--heap-growing-percent=50']],
    ['report-fetcher', ['--max-semi-space-size=8', '--heap-growing-percent=50']],
  ])('starts the %s with the node flags scripts/run-local.sh uses', (service, flags) => {
    const command = compose.services[service]?.command ?? [];
    const composeFlags = command.filter((arg) => arg.startsWith('--'));
    const script = readFileSync(join(__dirname, '../../scripts/run-local.sh'), 'utf8');
    const line = new RegExp(`^start_app ${service}(.*)$`, 'm').exec(script)?.[1] ?? '';
    expect(composeFlags).toEqual(line.trim().split(/\s+/).filter(Boolean));
    expect(composeFlags).toEqual(flags);
  });

  it('uses only variable names the apps read', () => {
    const known = new Set(Object.keys(ALL_VARIABLES));
    for (const service of [...Object.keys(loaders), 'setup']) {
      const unknown = Object.keys(environmentOf(service)).filter((name) => !known.has(name));
      expect({ service, unknown }).toEqual({ service, unknown: [] });
    }
  });

  it('points the apps at the sandbox service when PLAID_ENV is local, and at Plaid otherwise', () => {
    expect(loadRefreshWorkerConfig(environmentOf('refresh-worker')).plaid.baseUrl).toBe(
      'http://plaid-sandbox:8090',
    );
    const real = {
      ...environmentOf('refresh-worker'),
      PLAID_ENV: 'production',
      PLAID_CLIENT_ID: 'id',
      PLAID_SECRET: 's',
    };
    expect(loadRefreshWorkerConfig(real).plaid.baseUrl).toBe('https://production.plaid.com');
  });
});

describe('docker-compose.yml, observability profile', () => {
  const observability = ['prometheus', 'grafana', 'jaeger'];

  it('adds Prometheus, Grafana and Jaeger under the profile only', () => {
    for (const [name, service] of Object.entries(compose.services)) {
      const expected = observability.includes(name) ? ['observability'] : undefined;
      expect({ name, profiles: service.profiles }).toEqual({ name, profiles: expected });
    }
    expect(Object.keys(compose.services)).toEqual(expect.arrayContaining(observability));
  });

  it('mounts files that are in the repository', () => {
    const mounts = observability.flatMap((name) =>
      (compose.services[name]?.volumes ?? []).filter((v) => v.startsWith('./')),
    );
    expect(mounts.length).toBeGreaterThanOrEqual(3);
    for (const mount of mounts) {
      const host = mount.split(':')[0]!;
      expect({ mount, exists: existsSync(join(root, host)) }).toEqual({ mount, exists: true });
    }
  });

  it('has Prometheus scrape each app on the port its metrics answer on, by the job names the rules use', () => {
    const config = parse(readFileSync(join(root, 'ops/prometheus/prometheus.yml'), 'utf8')) as {
      rule_files: string[];
      scrape_configs: { job_name: string; static_configs: { targets: string[] }[] }[];
    };
    const scraped = Object.fromEntries(
      config.scrape_configs.map((c) => [c.job_name, c.static_configs.flatMap((s) => s.targets)]),
    );
    const metricsPort = {
      'refresh-worker': loadRefreshWorkerConfig(environmentOf('refresh-worker')).http.port,
      'webhook-ingress': loadWebhookIngressConfig(environmentOf('webhook-ingress')).adminHttp.port,
      projector: loadProjectorConfig(environmentOf('projector')).http.port,
      'report-fetcher': loadReportFetcherConfig(environmentOf('report-fetcher')).http.port,
      'plaid-sandbox': loadPlaidSandboxConfig(environmentOf('plaid-sandbox')).http.port,
    };
    expect(scraped).toEqual(
      Object.fromEntries(
        Object.entries(metricsPort).map(([service, port]) => [service, [`${service}:${port}`]]),
      ),
    );
    for (const file of config.rule_files) {
      expect(existsSync(join(root, 'ops/prometheus', file))).toBe(true);
    }
  });

  it('points Grafana at the Prometheus service and its dashboard provider at the mounted dashboard', () => {
    const provisioning = join(root, 'ops/grafana/provisioning');
    const datasources = parse(
      readFileSync(join(provisioning, 'datasources/datasources.yaml'), 'utf8'),
    ) as { datasources: { type: string; url: string }[] };
    // Inside the compose network Prometheus answers on its own port, 9090.
    expect(datasources.datasources.find((d) => d.type === 'prometheus')?.url).toBe(
      'http://prometheus:9090',
    );
    const providers = parse(
      readFileSync(join(provisioning, 'dashboards/cashflow-refresh.yaml'), 'utf8'),
    ) as { providers: { options: { path: string } }[] };
    const dashboardMount = (compose.services.grafana?.volumes ?? []).find((v) =>
      v.startsWith('./ops/grafana/cashflow-refresh.json:'),
    );
    expect(dashboardMount?.split(':')[1]).toBe(
      `${providers.providers[0]!.options.path}/cashflow-refresh.json`,
    );
  });
});
