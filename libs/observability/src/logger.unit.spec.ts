import { Writable } from 'node:stream';
import { createLogger, scrubSecrets } from './logger';

function capture() {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
      done();
    },
  });
  return { lines, logger: createLogger({ service: 'test', level: 'info', destination: stream }) };
}

const TOKEN = 'access-sandbox-00000000-fake-fake-fake-000000000000';

describe('logger', () => {
  it('writes JSON lines with the service name and an ISO time', () => {
    const { lines, logger } = capture();
    logger.info({ item_id: 'item-1' }, 'hello');
    expect(lines[0]).toMatchObject({
      service: 'test',
      level: 'info',
      item_id: 'item-1',
      msg: 'hello',
    });
    expect(String(lines[0]?.time)).toMatch(/^\d{4}-\d\d-\d\dT/);
  });

  it('redacts secrets by field name', () => {
    const { lines, logger } = capture();
    logger.info({ access_token: TOKEN, body: { secret: 's3cr3t', client_id: 'id' } }, 'call');
    const text = JSON.stringify(lines[0]);
    expect(text).not.toContain(TOKEN);
    expect(text).not.toContain('s3cr3t');
    expect(text).toContain('"client_id":"id"');
  });

  it('scrubs access tokens from messages and errors', () => {
    const { lines, logger } = capture();
    logger.warn(`token ${TOKEN} rejected`);
    logger.error({ err: new Error(`bad token ${TOKEN}`) }, 'failed');
    const text = JSON.stringify(lines);
    expect(text).not.toContain(TOKEN);
    expect(text).toContain('[REDACTED]');
  });

  it("leaves a failed query's parameters and text out of a logged error (a page of bank transactions)", () => {
    const { lines, logger } = capture();
    // What TypeORM's QueryFailedError carries: the SQL, its parameters, the driver's error.
    const error = Object.assign(new Error('connection terminated unexpectedly'), {
      query: 'INSERT INTO report_transactions ... FROM jsonb_array_elements($2::jsonb)',
      parameters: ['item-1', '[{"transaction_id":"txn-secret","name":"PHARMACY 42"}]'],
      driverError: { parameters: ['[{"transaction_id":"txn-secret"}]'] },
    });
    logger.error({ err: error }, 'fetch run failed');
    const text = JSON.stringify(lines);
    expect(text).not.toContain('txn-secret');
    expect(text).not.toContain('PHARMACY');
    expect(text).toContain('connection terminated unexpectedly');
  });

  it('scrubs passwords from database URLs', () => {
    expect(scrubSecrets('postgres://cashflow:hunter2@127.0.0.1:15432/db')).toBe(
      'postgres://cashflow:[REDACTED]@127.0.0.1:15432/db',
    );
  });
});
