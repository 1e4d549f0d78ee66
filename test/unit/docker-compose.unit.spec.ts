import { ALL_VARIABLES } from '@cashflow/config';
import { readFileSync } from 'node:fs';
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
}
const compose = parse(readFileSync(join(__dirname, '../../docker-compose.yml'), 'utf8'), {
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

  it('starts the worker with the node flags scripts/run-local.sh uses', () => {
    const command = compose.services['refresh-worker']?.command ?? [];
    const composeFlags = command.filter((arg) => arg.startsWith('--'));
    const script = readFileSync(join(__dirname, '../../scripts/run-local.sh'), 'utf8');
    const line = /^start_app refresh-worker(.*)$/m.exec(script)?.[1] ?? '';
    expect(composeFlags).toEqual(line.trim().split(/\s+/).filter(Boolean));
    expect(composeFlags).toContain('--heap-growing-percent=20');
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
