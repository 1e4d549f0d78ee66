import { createEvent } from '@cashflow/contracts';
import { EventPublisher } from '@cashflow/kafka';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { testKafka } from '../support/kafka';
import { startSystem, type System } from '../support/system';

interface Finding {
  name: string;
  holds: boolean;
  counts: Record<string, number>;
  examples: string[];
}

/**
 * `cashflow-refresh check` against the whole system: it holds after real refreshes (ready,
 * failed, coalesced), then names each promise broken on purpose.
 */
describe('cashflow-refresh check', () => {
  let system: System;
  const logs = mkdtempSync(join(tmpdir(), 'cashflow-check-logs-'));

  beforeAll(async () => {
    system = await startSystem();
  });
  afterAll(async () => {
    await system.stop();
    rmSync(logs, { recursive: true, force: true });
  });

  const check = async () => {
    const run = await system.check(logs, '--json');
    const report = JSON.parse(run.stdout) as { holds: boolean; findings: Finding[] };
    const byName = (start: string) => report.findings.find((f) => f.name.startsWith(start))!;
    return { code: run.code, report, byName, stderr: run.stderr };
  };

  it('holds for a system that did its work, then finds each broken promise', async () => {
    const ready = await system.item();
    const failing = await system.item({ behaviour: { kind: 'item_login_required' } });
    for (const item of [ready, failing]) {
      const run = await system.cli(['refresh', item.item_id, '--wait']);
      expect(run.code).toBe(item === ready ? 0 : 3);
    }

    const clean = await check();
    expect(clean.stderr).toBe('');
    expect(clean.code).toBe(0);
    expect(clean.report.holds).toBe(true);
    expect(clean.byName('every request').counts).toMatchObject({
      requests: 2,
      accepted: 1,
      failed: 1,
      violations: 0,
    });
    expect(clean.byName('every report').counts).toMatchObject({
      reports: 1,
      'sandbox deliveries acknowledged': 1,
      violations: 0,
    });
    expect(clean.byName('the projection').counts).toMatchObject({ items: 2, mismatches: 0 });
    expect(clean.byName('no secret').counts.leaks).toBe(0);

    // Break each promise: an outcome nobody asked for, a report the sandbox never sent, a
    // projection row edited by hand, an access token in a log.
    const publisher = new EventPublisher(testKafka(system.prefix), system.prefix);
    await publisher.connect();
    const meta = (id: string) => ({
      id,
      source: 'urn:cashflow-refresh:webhook-ingress',
      time: new Date().toISOString(),
    });
    await publisher.publish(
      createEvent(
        'RefreshAccepted',
        {
          item_id: ready.item_id,
          refresh_request_id: 'never-requested',
          plaid_request_id: 'p-1',
          days_requested: 365,
          attempts: 1,
          accepted_at: new Date().toISOString(),
        },
        meta('orphan-outcome'),
      ),
    );
    await publisher.publish(
      createEvent(
        'ReportReady',
        {
          item_id: ready.item_id,
          webhook_type: 'CASHFLOW_REPORT',
          webhook_code: 'CASHFLOW_REPORT_READY',
          environment: 'sandbox',
          found_by: 'webhook',
          received_at: new Date().toISOString(),
          delivery_id: 'f'.repeat(64),
          webhook: { item_id: ready.item_id },
        },
        meta('forged-report'),
      ),
    );
    await publisher.disconnect();
    await system.itemState(ready.item_id, (r) => r.last_event_id === 'forged-report');
    await system.rows('UPDATE item_refresh_state SET refreshes = 99 WHERE item_id = $1', [
      failing.item_id,
    ]);
    writeFileSync(join(logs, 'leaky.log'), `calling plaid with ${ready.access_token}\n`);

    const broken = await check();
    expect(broken.code).toBe(3);
    expect(broken.report.holds).toBe(false);
    expect(broken.byName('every request').counts['outcome without request']).toBe(1);
    expect(broken.byName('every report').counts['not sent by the sandbox']).toBe(1);
    const projection = broken.byName('the projection');
    expect(projection.examples).toContain(
      `item ${failing.item_id}: refreshes is 99, the log gives 0`,
    );
    const secrets = broken.byName('no secret');
    expect(secrets.examples).toContain(
      `${join(logs, 'leaky.log')} contains the access token of ${ready.item_id}`,
    );
    expect(secrets.examples).toContain(`${join(logs, 'leaky.log')} contains a Plaid access token`);
    expect(JSON.stringify(broken.report)).not.toContain(ready.access_token);
  });
});
