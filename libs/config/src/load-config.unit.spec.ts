import { z } from 'zod';
import { ConfigError, loadConfig } from './load-config';
import {
  commonVariables,
  databaseVariables,
  kafkaVariables,
  plaidVariables,
  ports,
  resolvePlaid,
} from './variables';

const schema = z.object({ ...commonVariables, ...kafkaVariables, ...databaseVariables });

function problemsOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (error) {
    if (error instanceof ConfigError)
      return error.problems.map((p) => `${p.variable}: ${p.message}`);
    throw error;
  }
  throw new Error('expected a ConfigError');
}

describe('loadConfig', () => {
  const valid = {
    KAFKA_BROKERS: '127.0.0.1:19092, 127.0.0.2:19092',
    DATABASE_URL: 'postgres://u:p@127.0.0.1:15432/db',
  };

  it('parses variables and applies defaults', () => {
    const config = loadConfig('test', schema, valid);
    expect(config.KAFKA_BROKERS).toEqual(['127.0.0.1:19092', '127.0.0.2:19092']);
    expect(config.LOG_LEVEL).toBe('info');
    expect(config.KAFKA_TOPIC_PREFIX).toBe('');
  });

  it('names every missing variable', () => {
    expect(problemsOf(() => loadConfig('test', schema, {}))).toEqual([
      'KAFKA_BROKERS: required',
      'DATABASE_URL: required',
    ]);
  });

  it('treats an empty variable as unset', () => {
    expect(problemsOf(() => loadConfig('test', schema, { ...valid, KAFKA_BROKERS: '' }))).toEqual([
      'KAFKA_BROKERS: required',
    ]);
  });

  it('names the variable holding a bad value, with a message saying what is expected', () => {
    const problems = problemsOf(() =>
      loadConfig('test', schema, { ...valid, KAFKA_BROKERS: 'localhost', LOG_LEVEL: 'loud' }),
    );
    expect(problems).toHaveLength(2);
    expect(problems[0]).toMatch(/^LOG_LEVEL: /);
    expect(problems[1]).toBe('KAFKA_BROKERS: each broker must be host:port');
  });

  it('says what is wrong with a value of the wrong type instead of calling it missing', () => {
    const withPort = z.object({ ...ports });
    const problems = problemsOf(() => loadConfig('test', withPort, { PROJECTOR_PORT: 'eighty' }));
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^PROJECTOR_PORT: /);
    expect(problems[0]).not.toBe('PROJECTOR_PORT: required');
  });

  it('never echoes a value in its message', () => {
    const error = (() => {
      try {
        loadConfig('test', schema, { ...valid, DATABASE_URL: 'mysql://user:hunter2@db/x' });
      } catch (e) {
        return e as Error;
      }
    })();
    expect(error?.message).toContain('DATABASE_URL');
    expect(error?.message).not.toContain('hunter2');
  });

  it('requires Plaid credentials for real Plaid only, naming them', () => {
    const plaid = z
      .object({ ...plaidVariables, ...ports })
      .transform((env, ctx) => resolvePlaid(env, ctx, env.PLAID_SANDBOX_PORT));
    expect(loadConfig('test', plaid, {})).toMatchObject({
      env: 'local',
      baseUrl: 'http://127.0.0.1:8090',
    });
    expect(problemsOf(() => loadConfig('test', plaid, { PLAID_ENV: 'production' }))).toEqual([
      'PLAID_CLIENT_ID: required when PLAID_ENV=production',
      'PLAID_SECRET: required when PLAID_ENV=production',
    ]);
    expect(
      loadConfig('test', plaid, { PLAID_ENV: 'sandbox', PLAID_CLIENT_ID: 'id', PLAID_SECRET: 's' })
        .baseUrl,
    ).toBe('https://sandbox.plaid.com');
  });
});
