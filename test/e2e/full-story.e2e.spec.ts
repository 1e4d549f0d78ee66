import { createEvent } from '@cashflow/contracts';
import { EventPublisher } from '@cashflow/kafka';
import { randomUUID } from 'node:crypto';
import { testKafka } from '../support/kafka';
import { startSystem, type System } from '../support/system';
import { steps } from '../support/cli';
import { waitFor } from '../support/wait-for';

/**
 * The full story with every app as its own process: an upstream team asks for a refresh with
 * the CLI; the worker calls the sandbox; the sandbox's signed webhook reaches the ingress; the
 * projector shows the result through SQL, the read API and the CLI.
 */
describe('the whole system', () => {
  let system: System;

  beforeAll(async () => {
    system = await startSystem();
  });
  afterAll(async () => {
    const codes = await system.stop();
    expect(codes).toEqual([0, 0, 0, 0]);
  });

  it('refresh -> RefreshAccepted -> signed webhook -> ReportReady -> ready, with durations', async () => {
    const item = await system.item();
    const run = await system.cli(['refresh', item.item_id, '--days', '90', '--wait', '--json']);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const seen = steps(run.stdout);
    expect(seen.map((s) => s.step)).toEqual(['requested', 'accepted', 'ready']);
    const requestId = seen[0]!.request_id;

    const row = await system.itemState(item.item_id, (r) => r.status === 'ready');
    expect(row).toMatchObject({ latest_request_id: requestId, days_requested: 90, refreshes: 1 });
    const [request] = await system.rows('SELECT * FROM refresh_requests WHERE request_id = $1', [
      requestId,
    ]);
    expect(Number(request!.seconds_to_accept)).toBeGreaterThan(0);
    expect(Number(request!.seconds_to_ready)).toBeGreaterThan(0);

    const api = await fetch(`${system.projectorUrl}/items/${item.item_id}/refresh-state`, {
      headers: { authorization: `Bearer ${system.readToken}` },
    });
    expect(await api.json()).toMatchObject({ status: 'ready', latest_request_id: requestId });
    const status = await system.cli(['status', item.item_id]);
    expect(status.stdout).toContain(`${item.item_id}: ready`);
  });

  it('Capital One with only non-depository accounts: PRODUCTS_NOT_SUPPORTED, not retried', async () => {
    const item = await system.item({
      institution_id: 'ins_128026',
      institution_name: 'Capital One',
      accounts: [{ name: 'Quicksilver', type: 'credit', subtype: 'credit card' }],
    });
    const run = await system.cli(['refresh', item.item_id, '--wait', '--json']);
    expect(run.code).toBe(3);
    const failed = steps(run.stdout).at(-1)!;
    expect(failed).toMatchObject({
      step: 'failed',
      detail: { error_code: 'PRODUCTS_NOT_SUPPORTED' },
    });
    await waitFor('the projected failure', async () => {
      const [r] = await system.rows('SELECT status FROM refresh_requests WHERE request_id = $1', [
        failed.request_id,
      ]);
      return r?.status === 'failed' ? true : undefined;
    });
    const [projected] = await system.rows(
      'SELECT attempts, retryable, error_code FROM refresh_requests WHERE request_id = $1',
      [failed.request_id],
    );
    expect(projected).toMatchObject({
      attempts: 1,
      retryable: false,
      error_code: 'PRODUCTS_NOT_SUPPORTED',
    });
  });

  it('ITEM_LOGIN_REQUIRED surfaces as needing user action', async () => {
    const item = await system.item({ behaviour: { kind: 'item_login_required' } });
    const run = await system.cli(['refresh', item.item_id, '--wait', '--json']);
    expect(run.code).toBe(3);
    await system.itemState(item.item_id, (r) => r.status === 'failed');
    const action = await system.rows(
      'SELECT item_id FROM ops_items_needing_action WHERE item_id = $1',
      [item.item_id],
    );
    expect(action).toHaveLength(1);
  });

  it('an Item whose login broke: its health shows, refreshes are refused without a Plaid call, and LOGIN_REPAIRED lets them through again', async () => {
    const item = await system.item();
    const refreshCalls = async () =>
      (await system.sandbox.admin('GET', `/items/${item.item_id}`)).body.item
        .refresh_calls as number;
    // The sandbox breaks the login and tells the ingress (ERROR, ITEM_LOGIN_REQUIRED).
    await system.sandbox.admin('POST', `/items/${item.item_id}/break_login`);
    await system.itemState(item.item_id, (r) => r.health_status === 'needs_user_action');

    const status = await system.cli(['status', item.item_id]);
    expect(status.stdout).toMatch(/health needs_user_action: ITEM_LOGIN_REQUIRED, since /);
    const listed = await system.cli(['list', '--needs-attention', '--json']);
    const needing = (JSON.parse(listed.stdout) as { items: { item_id: string }[] }).items;
    expect(needing.map((i) => i.item_id)).toContain(item.item_id);

    const calls = await refreshCalls();
    const refused = await system.cli(['refresh', item.item_id, '--wait', '--json']);
    expect(refused.code).toBe(3);
    expect(steps(refused.stdout).at(-1)).toMatchObject({
      step: 'failed',
      detail: { error_code: 'ITEM_LOGIN_REQUIRED', health: 'needs_user_action' },
    });
    expect(await refreshCalls()).toBe(calls);

    await system.sandbox.admin('POST', `/items/${item.item_id}/repair_login`);
    await system.itemState(
      item.item_id,
      (r) => r.health_status === 'healthy' && r.health_changed_at !== null,
    );
    const again = await system.cli(['refresh', item.item_id, '--wait', '--json']);
    expect(again.code).toBe(0);
    expect(await refreshCalls()).toBe(calls + 1);
  });

  it('500 twice, then success: ready after three Plaid calls', async () => {
    const item = await system.item({
      behaviour: { kind: 'transient', error_code: 'INTERNAL_SERVER_ERROR', failures: 2 },
    });
    const run = await system.cli(['refresh', item.item_id, '--wait', '--json']);
    expect(run.code).toBe(0);
    const accepted = steps(run.stdout).find((s) => s.step === 'accepted');
    expect(accepted).toMatchObject({ detail: { attempts: 3 } });
    await system.itemState(item.item_id, (r) => r.status === 'ready' && r.attempts === 3);
  });

  it('a webhook carrying an error fails the refresh', async () => {
    const item = await system.item({
      behaviour: { kind: 'webhook_error', error_code: 'INSTITUTION_NOT_RESPONDING' },
    });
    const run = await system.cli(['refresh', item.item_id, '--wait', '--json']);
    expect(run.code).toBe(3);
    expect(steps(run.stdout).map((s) => s.step)).toEqual(['requested', 'accepted', 'failed']);
    const row = await system.itemState(item.item_id, (r) => r.status === 'failed');
    expect(row).toMatchObject({
      last_error_source: 'webhook',
      last_error_code: 'INSTITUTION_NOT_RESPONDING',
    });
  });

  it('an Item without a registered token fails with UNKNOWN_ITEM', async () => {
    const run = await system.cli(['refresh', 'item-nobody-registered', '--wait', '--json']);
    expect(run.code).toBe(3);
    expect(steps(run.stdout).at(-1)).toMatchObject({ detail: { error_code: 'UNKNOWN_ITEM' } });
  });

  it('a forged webhook is refused and changes nothing', async () => {
    const item = await system.item();
    const body = JSON.stringify({
      webhook_type: 'CASHFLOW_REPORT',
      webhook_code: 'CASHFLOW_REPORT_READY',
      item_id: item.item_id,
      error: null,
      environment: 'sandbox',
    });
    const forged = await fetch(system.webhookUrl, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'plaid-verification': 'eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJpYXQiOjF9.',
      },
      body,
    });
    expect(forged.status).toBe(401);
    // A refresh afterwards still goes through the whole story, and only its own webhook counts.
    const run = await system.cli(['refresh', item.item_id, '--wait', '--json']);
    expect(run.code).toBe(0);
    const copies = await system.rows(
      `SELECT count(*)::int AS n FROM projection_events WHERE item_id = $1 AND event_type = 'ReportReady'`,
      [item.item_id],
    );
    expect(copies[0]?.n).toBeLessThanOrEqual(1);
  });

  it('ten requests for one Item in a burst coalesce into fewer Plaid calls, all answered', async () => {
    const item = await system.item();
    // A burst as an upstream service sends it: ten events in one produce request.
    const publisher = new EventPublisher(testKafka(system.prefix), system.prefix);
    await publisher.connect();
    const requests = Array.from({ length: 10 }, () =>
      createEvent(
        'RefreshRequested',
        { item_id: item.item_id },
        { id: randomUUID(), source: 'urn:test:upstream', time: new Date().toISOString() },
      ),
    );
    await publisher.publish(...requests);
    await publisher.disconnect();

    await waitFor(
      'ten projected requests, all ready',
      async () => {
        const [r] = await system.rows(
          `SELECT count(*)::int AS n FROM refresh_requests WHERE item_id = $1 AND status = 'ready'`,
          [item.item_id],
        );
        return r?.n === 10 ? true : undefined;
      },
      60_000,
    );
    const { body } = await system.sandbox.admin('GET', `/items/${item.item_id}`);
    const calls = (body as { item: { refresh_calls: number } }).item.refresh_calls;
    expect(calls).toBeLessThan(10);
    const coalesced = await system.rows(
      'SELECT count(*)::int AS n FROM refresh_requests WHERE item_id = $1 AND coalesced_into IS NOT NULL',
      [item.item_id],
    );
    expect(coalesced[0]?.n).toBe(10 - calls);
    expect(await system.itemState(item.item_id, () => true)).toMatchObject({
      status: 'ready',
      refreshes: calls,
    });
  });
});
