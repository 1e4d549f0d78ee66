import { mkdtempSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { steps } from '../support/cli';
import { startSystem, type System } from '../support/system';

/**
 * A webhook that never comes, with every app its own process: the refresh still ends ready
 * (found by polling) and fetched once, `refresh --wait` says so, and `check --sandbox` accepts
 * the polled report. Overdue after 2 s here (15 min by default).
 */
describe('when the webhook never comes', () => {
  let system: System;
  let failing: Server;
  let failingUrl: string;
  let failingHits = 0;

  beforeAll(async () => {
    failing = createServer((_req, res) => {
      failingHits += 1;
      res.writeHead(500).end();
    });
    await new Promise<void>((resolve) => failing.listen(0, '127.0.0.1', resolve));
    const address = failing.address();
    if (!address || typeof address === 'string') throw new Error('no address');
    failingUrl = `http://127.0.0.1:${address.port}/webhooks/plaid`;
    system = await startSystem({
      fetcher: {
        REPORT_OVERDUE_AFTER_MS: '2000',
        REPORT_GIVE_UP_AFTER_MS: '60000',
        REPORT_POLL_BACKOFF_BASE_MS: '500',
        REPORT_POLL_BACKOFF_MAX_MS: '2000',
        PLAID_RATE_LIMIT_PER_ITEM: '100',
        PLAID_RATE_LIMIT_WINDOW_MS: '1000',
      },
    });
  });
  afterAll(async () => {
    const codes = await system?.stop();
    expect(codes).toEqual([0, 0, 0, 0, 0]);
    await new Promise<void>((resolve) => failing?.close(() => resolve()));
  });

  async function refreshed(itemId: string) {
    const run = await system.cli(['refresh', itemId, '--wait', '--until', 'fetched', '--json']);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const seen = steps(run.stdout);
    expect(seen.map((s) => s.step)).toEqual(['requested', 'accepted', 'ready', 'fetched']);
    expect(seen[2]!.detail).toMatchObject({ found_by: 'polling' });
    const row = await system.itemState(itemId, (r) => r.status === 'ready');
    const reports = await system.rows('SELECT found_by FROM item_reports WHERE item_id = $1', [
      itemId,
    ]);
    expect(reports).toEqual([{ found_by: 'polling' }]);
    const fetches = await system.rows(
      "SELECT count(*)::int AS n FROM report_fetches WHERE item_id = $1 AND outcome = 'fetched'",
      [itemId],
    );
    expect(fetches[0]!.n).toBe(1);
    return row;
  }

  it('an Item without a webhook URL: ready through polling, fetched once', async () => {
    const item = await system.item({ webhook: null, transactions_per_account: 20 });
    await refreshed(item.item_id);
  });

  it('an endpoint that always answers 500: ready through polling while Plaid still retries', async () => {
    const item = await system.item({ webhook: failingUrl, transactions_per_account: 20 });
    await refreshed(item.item_id);
    expect(failingHits).toBeGreaterThan(0);
  });

  it('check accepts the reports found by polling', async () => {
    const checked = await system.check(mkdtempSync(join(tmpdir(), 'cashflow-missed-')), '--json');
    if (checked.code !== 0) console.error(checked.stdout, checked.stderr);
    expect(checked.code).toBe(0);
    const report = JSON.parse(checked.stdout) as {
      findings: { name: string; counts: Record<string, number> }[];
    };
    const reports = report.findings.find((f) => f.name.startsWith('every report came from'));
    expect(reports?.counts['found by polling']).toBe(2);
  });
});
