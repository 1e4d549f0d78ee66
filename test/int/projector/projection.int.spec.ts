import { randomUUID } from 'node:crypto';
import { Client } from 'pg';
import { projectorWorld, type ProjectorWorld } from '../../support/projector';
import { eventsFor } from '../../support/refresh-histories';
import { waitFor } from '../../support/wait-for';

/** The projector over the real broker and PostgreSQL: events in, rows out. */
describe('projector', () => {
  let world: ProjectorWorld;
  let projector: Awaited<ReturnType<ProjectorWorld['startProjector']>>;

  beforeAll(async () => {
    world = await projectorWorld();
    projector = await world.startProjector();
  });
  afterAll(async () => {
    await world.close();
  });

  const newItem = () => {
    const itemId = `item-${randomUUID()}`;
    return { itemId, e: eventsFor(itemId) };
  };
  const untilItem = (itemId: string, ready: (row: Record<string, unknown>) => boolean) =>
    world.until(
      `item ${itemId}`,
      'SELECT * FROM item_refresh_state WHERE item_id = $1',
      [itemId],
      (rows) => rows.length === 1 && ready(rows[0]!),
    );
  const requestsOf = (itemId: string) =>
    world.rows('SELECT * FROM refresh_requests WHERE item_id = $1 ORDER BY request_id', [itemId]);
  /** projector_refresh_seconds of a stage: how many requests it timed, and their total. */
  const refreshSeconds = async (stage: 'to_accept' | 'to_ready') => {
    const text = await (await fetch(`${projector.url}/metrics`)).text();
    const read = (part: 'count' | 'sum') =>
      Number(
        new RegExp(
          `^projector_refresh_seconds_${part}\\{[^}]*stage="${stage}"[^}]*\\} (\\S+)$`,
          'm',
        ).exec(text)?.[1] ?? 0,
      );
    return { count: read('count'), sum: read('sum') };
  };

  describe('transitions', () => {
    it('requested -> refreshing -> ready, with durations and one refresh counted', async () => {
      const { itemId, e } = newItem();
      const timedBefore = {
        toAccept: await refreshSeconds('to_accept'),
        toReady: await refreshSeconds('to_ready'),
      };
      await world.publish(e.requested(`${itemId}-r1`, 90, '2026-11-24T10:00:00Z'));
      await untilItem(itemId, (r) => r.status === 'requested');
      await world.publish(e.accepted(`${itemId}-r1`, '2026-11-24T10:00:02Z'));
      await untilItem(itemId, (r) => r.status === 'refreshing');
      await world.publish(e.ready(`${itemId}-x1`, '2026-11-24T10:01:02Z'));
      const [row] = await untilItem(itemId, (r) => r.status === 'ready');
      expect(row).toMatchObject({
        latest_request_id: `${itemId}-r1`,
        plaid_request_id: `plaid-${itemId}-r1`,
        refreshes: 1,
        attempts: 1,
        last_error_code: null,
      });
      expect((row!.ready_at as Date).toISOString()).toBe('2026-11-24T10:01:02.000Z');
      const [request] = await requestsOf(itemId);
      expect(request).toMatchObject({ status: 'ready', requested_by: 'tests' });
      expect(Number(request!.seconds_to_accept)).toBe(2);
      expect(Number(request!.seconds_to_ready)).toBe(60);
      // The same durations on /metrics, each request timed once (observed after the commit).
      const toReady = await waitFor('the request timed on /metrics', async () => {
        const now = await refreshSeconds('to_ready');
        return now.count > timedBefore.toReady.count ? now : undefined;
      });
      expect(toReady).toEqual({
        count: timedBefore.toReady.count + 1,
        sum: timedBefore.toReady.sum + 60,
      });
      expect(await refreshSeconds('to_accept')).toEqual({
        count: timedBefore.toAccept.count + 1,
        sum: timedBefore.toAccept.sum + 2,
      });
      const copies = await world.rows(
        'SELECT event_type FROM projection_events WHERE item_id = $1',
        [itemId],
      );
      expect(copies.map((c) => c.event_type).sort()).toEqual([
        'RefreshAccepted',
        'RefreshRequested',
        'ReportReady',
      ]);
    });

    it('refreshing -> overdue on ReportOverdue, then ready when a late report comes; a report found by polling keeps how', async () => {
      const { itemId, e } = newItem();
      const r1 = `${itemId}-r1`;
      await world.publish(e.requested(r1), e.accepted(r1, '2026-11-24T10:00:02Z'));
      await untilItem(itemId, (r) => r.status === 'refreshing');
      await world.publish(e.overdue(`${itemId}-o1`, '2026-11-24T16:00:02Z', [r1]));
      await untilItem(itemId, (r) => r.status === 'overdue');
      const [overdue] = await requestsOf(itemId);
      expect(overdue).toMatchObject({ status: 'overdue' });
      expect((overdue!.overdue_at as Date).toISOString()).toBe('2026-11-24T16:00:02.000Z');

      const late = e.readyByPolling('late', '2026-11-24T16:30:00Z', [r1]);
      await world.publish(late);
      await untilItem(itemId, (r) => r.status === 'ready' && r.refreshes === 1);
      const [ready] = await requestsOf(itemId);
      expect(ready).toMatchObject({ status: 'ready', report_event_id: late.metadata.id });
      expect((ready!.overdue_at as Date).toISOString()).toBe('2026-11-24T16:00:02.000Z');
      const reports = await world.rows(
        'SELECT found_by FROM item_reports WHERE item_id = $1 AND event_id = $2',
        [itemId, late.metadata.id],
      );
      expect(reports).toEqual([{ found_by: 'polling' }]);
    });

    it("lets a later request's report complete an overdue older request, as the fold does", async () => {
      const { itemId, e } = newItem();
      const [r1, r2] = [`${itemId}-r1`, `${itemId}-r2`];
      await world.publish(e.requested(r1), e.accepted(r1, '2026-11-24T10:00:02Z'));
      await world.publish(e.overdue(`${itemId}-o1`, '2026-11-24T16:00:02Z', [r1]));
      await untilItem(itemId, (r) => r.status === 'overdue');
      // Asked again: the new request's report answers the old one too, by time.
      await world.publish(e.requested(r2), e.accepted(r2, '2026-11-24T17:00:00Z'));
      await untilItem(itemId, (r) => r.status === 'refreshing' && r.latest_request_id === r2);
      await world.publish(e.ready(`${itemId}-x2`, '2026-11-24T17:01:00Z'));
      await untilItem(itemId, (r) => r.status === 'ready');
      const requests = await requestsOf(itemId);
      expect(requests.map((r) => [r.request_id, r.status])).toEqual([
        [r1, 'ready'],
        [r2, 'ready'],
      ]);
      const [item] = await world.rows(
        'SELECT refreshes FROM item_refresh_state WHERE item_id = $1',
        [itemId],
      );
      expect(item!.refreshes).toBe(2);
    });

    it('keeps found_by polling when the fetch of a polled report is projected before the report', async () => {
      const { itemId, e } = newItem();
      const r1 = `${itemId}-r1`;
      const polled = e.readyByPolling('p1', '2026-11-24T10:00:09Z', [r1]);
      await world.publish(e.requested(r1), e.accepted(r1, '2026-11-24T10:00:02Z'));
      await world.publish(
        e.fetched(
          'f1',
          '2026-11-24T10:00:20Z',
          { id: polled.metadata.id, receivedAt: '2026-11-24T10:00:09.000Z' },
          [r1],
        ),
      );
      await untilItem(itemId, (r) => r.status === 'ready' && r.fetched_at !== null);
      const before = await world.rows('SELECT found_by FROM item_reports WHERE item_id = $1', [
        itemId,
      ]);
      expect(before).toEqual([{ found_by: 'webhook' }]);
      await world.publish(polled);
      await world.until(
        `found_by of ${itemId}`,
        'SELECT found_by FROM item_reports WHERE item_id = $1',
        [itemId],
        (rows) => rows.length === 1 && rows[0]!.found_by === 'polling',
      );
    });

    it('ReportReady published before RefreshAccepted still completes the refresh', async () => {
      const { itemId, e } = newItem();
      await world.publish(
        e.requested(`${itemId}-r1`),
        e.ready(`${itemId}-x1`, '2026-11-24T10:00:03Z'),
      );
      await untilItem(itemId, (r) => r.status === 'requested');
      await world.publish(e.accepted(`${itemId}-r1`, '2026-11-24T10:00:02.500Z'));
      await untilItem(itemId, (r) => r.status === 'ready' && r.refreshes === 1);
    });

    it('RefreshFailed, then a late failure for an older request after a newer one is ready', async () => {
      const { itemId, e } = newItem();
      await world.publish(e.requested(`${itemId}-r1`), e.requested(`${itemId}-r2`));
      await world.publish(e.accepted(`${itemId}-r2`, '2026-11-24T10:00:02Z'));
      await world.publish(e.ready(`${itemId}-x1`, '2026-11-24T10:01:00Z'));
      await untilItem(itemId, (r) => r.status === 'ready');
      await world.publish(e.failed(`${itemId}-r1`, '2026-11-24T10:00:01Z'));
      await world.until(
        'the late failure',
        'SELECT status FROM refresh_requests WHERE request_id = $1',
        [`${itemId}-r1`],
        (rows) => rows[0]?.status === 'failed',
      );
      expect(await world.item(itemId)).toMatchObject({
        status: 'ready',
        latest_request_id: `${itemId}-r2`,
        last_error_code: 'ITEM_LOGIN_REQUIRED',
        last_error_source: 'plaid',
      });
    });

    it('a RefreshFailed for the latest request fails the Item', async () => {
      const { itemId, e } = newItem();
      await world.publish(e.requested(`${itemId}-r1`));
      await world.publish(e.failed(`${itemId}-r1`, '2026-11-24T10:00:01Z', 'INSTITUTION_DOWN'));
      await untilItem(
        itemId,
        (r) => r.status === 'failed' && r.last_error_code === 'INSTITUTION_DOWN',
      );
    });

    it('a failure webhook fails the refresh with the webhook error', async () => {
      const { itemId, e } = newItem();
      await world.publish(e.requested(`${itemId}-r1`));
      await world.publish(e.accepted(`${itemId}-r1`, '2026-11-24T10:00:02Z'));
      await world.publish(e.reportFailed(`${itemId}-x1`, '2026-11-24T10:01:00Z'));
      await untilItem(itemId, (r) => r.status === 'failed' && r.last_error_source === 'webhook');
      const [request] = await requestsOf(itemId);
      expect(request).toMatchObject({ status: 'report_failed', error_code: 'ITEM_LOGIN_REQUIRED' });
    });

    it('a repeated ReportReady changes nothing; other webhooks are only copied', async () => {
      const { itemId, e } = newItem();
      await world.publish(e.requested(`${itemId}-r1`));
      await world.publish(e.accepted(`${itemId}-r1`, '2026-11-24T10:00:02Z'));
      await world.publish(e.ready(`${itemId}-x1`, '2026-11-24T10:01:00Z'));
      const [before] = await untilItem(itemId, (r) => r.status === 'ready');
      await world.publish(
        e.ready(`${itemId}-x2`, '2026-11-24T10:01:40Z'),
        e.otherWebhook(`${itemId}-w1`, '2026-11-24T10:02:00Z'),
      );
      await world.until(
        'both copies',
        'SELECT count(*)::int AS n FROM projection_events WHERE item_id = $1',
        [itemId],
        (rows) => rows[0]?.n === 5,
      );
      const after = await world.item(itemId);
      expect(after).toMatchObject({ status: 'ready', refreshes: 1, ready_at: before!.ready_at });
    });
  });

  describe('report fetches', () => {
    it('a fetch read first and twice gives the Item its fetch and the request its seconds to fetched', async () => {
      const { itemId, e } = newItem();
      const report = { id: `${itemId}-x1`, receivedAt: '2026-11-24T10:01:00.000Z' };
      const fetch = e.fetched(`${itemId}-f1`, '2026-11-24T10:01:45.000Z', report, [`${itemId}-r1`]);
      await world.publish(fetch, fetch);
      await untilItem(itemId, (r) => r.transaction_count === 42);
      await world.publish(e.requested(`${itemId}-r1`, 90, '2026-11-24T10:00:00Z'));
      await world.publish(e.accepted(`${itemId}-r1`, '2026-11-24T10:00:02Z'));
      await world.publish(e.ready(report.id, report.receivedAt), fetch);
      await world.untilCaughtUp();
      const row = await world.item(itemId);
      expect(row).toMatchObject({
        status: 'ready',
        refreshes: 1,
        fetched_at: new Date('2026-11-24T10:01:45Z'),
        last_fetch_id: fetch.data.fetch_id,
        last_successful_update_time: new Date('2026-11-24T10:01:40Z'),
        transaction_count: 42,
        fetch_failed_at: null,
      });
      const [request] = await requestsOf(itemId);
      expect(request).toMatchObject({
        status: 'ready',
        fetched_at: new Date('2026-11-24T10:01:45Z'),
      });
      expect(Number(request!.seconds_to_fetched)).toBe(105);
      const state = await projector.get(`/items/${itemId}/refresh-state`);
      expect(state.body).toMatchObject({
        fetched_at: '2026-11-24T10:01:45.000Z',
        last_successful_update_time: '2026-11-24T10:01:40.000Z',
        transaction_count: 42,
        last_fetch_failure: null,
      });
      const refreshes = await projector.get(`/items/${itemId}/refreshes`);
      expect(refreshes.body.refreshes[0]).toMatchObject({
        fetched_at: '2026-11-24T10:01:45.000Z',
        seconds_to_fetched: 105,
      });
      const reports = await world.rows('SELECT event_id FROM item_reports WHERE item_id = $1', [
        itemId,
      ]);
      expect(reports).toEqual([{ event_id: report.id }]);
    });

    it('the newest fetch and the newest failure, whatever order they are read in', async () => {
      const { itemId, e } = newItem();
      const report = { id: `${itemId}-x1`, receivedAt: '2026-11-24T10:01:00.000Z' };
      await world.publish(e.ready(report.id, report.receivedAt));
      await world.publish(
        e.fetched(`${itemId}-f3`, '2026-11-24T10:30:00.000Z', report, [], 300),
        e.fetchFailed(`${itemId}-f2`, '2026-11-24T10:20:00.000Z', report),
        e.fetched(`${itemId}-f1`, '2026-11-24T10:10:00.000Z', report, [], 100),
      );
      await world.untilCaughtUp();
      expect(await world.item(itemId)).toMatchObject({
        status: 'ready',
        last_error_code: null,
        fetched_at: new Date('2026-11-24T10:30:00Z'),
        transaction_count: 300,
        fetch_failed_at: new Date('2026-11-24T10:20:00Z'),
        fetch_error_code: 'ITEM_LOGIN_REQUIRED',
        fetch_error_message: 'the login details of this item have changed',
      });
      const state = await projector.get(`/items/${itemId}/refresh-state`);
      expect(state.body.last_fetch_failure).toEqual({
        code: 'ITEM_LOGIN_REQUIRED',
        message: 'the login details of this item have changed',
        at: '2026-11-24T10:20:00.000Z',
      });
    });
  });

  it('dead-letters a record it cannot decode and carries on', async () => {
    const producer = world.kafka.producer();
    await producer.connect();
    await producer.send({
      topic: `${world.prefix}cashflow-refresh.refresh-requested.v1`,
      messages: [{ key: 'bad', value: '{"not":"an event"}' }],
    });
    await producer.disconnect();
    const { itemId, e } = newItem();
    await world.publish(e.requested(`${itemId}-r1`));
    await untilItem(itemId, (r) => r.status === 'requested');
    const metrics = await (await fetch(`${projector.url}/metrics`)).text();
    expect(metrics).toMatch(/projector_dead_letters_total\{[^}]*refresh-requested[^}]*\} 1/);
  });

  describe('a request id used for two Items', () => {
    it("keeps each Item's request: the second never overwrites the first Item's row", async () => {
      const a = newItem();
      const b = newItem();
      // CloudEvents ids are unique per source: another upstream may send the same id for its Item.
      const id = `shared-${randomUUID()}`;
      await world.publish(a.e.requested(id, 90, '2026-11-24T10:00:00Z'));
      await world.publish(a.e.accepted(id, '2026-11-24T10:00:02Z'));
      await untilItem(a.itemId, (r) => r.status === 'refreshing');
      await world.publish(b.e.requested(id, 30, '2026-11-24T10:00:05Z'));
      await untilItem(b.itemId, (r) => r.status === 'requested');

      const [first] = await requestsOf(a.itemId);
      expect(first).toMatchObject({ request_id: id, status: 'accepted', days_requested: 365 });
      const [second] = await requestsOf(b.itemId);
      expect(second).toMatchObject({ request_id: id, status: 'requested', days_requested: 30 });
    });
  });

  describe('the read-only role', () => {
    it('can read the views and tables, and is refused a write and the access tokens', async () => {
      const login = `ops_${randomUUID().replaceAll('-', '')}`;
      await world.rows(
        `CREATE ROLE ${login} LOGIN PASSWORD 'ops-password' IN ROLE cashflow_readonly`,
      );
      const url = new URL(world.db.url);
      url.username = login;
      url.password = 'ops-password';
      const ops = new Client({ connectionString: url.toString() });
      await ops.connect();
      try {
        for (const view of [
          'ops_stuck_refreshes',
          'ops_failures_by_code',
          'ops_refresh_latency',
          'ops_items_needing_action',
          'ops_item_health',
          'item_refresh_state',
          'refresh_requests',
          'projection_events',
        ]) {
          await expect(ops.query(`SELECT * FROM ${view} LIMIT 1`)).resolves.toBeDefined();
        }
        await expect(ops.query(`SELECT * FROM stuck_refreshes('1 minute')`)).resolves.toBeDefined();
        await expect(ops.query(`UPDATE item_refresh_state SET status = 'ready'`)).rejects.toThrow(
          /permission denied/,
        );
        await expect(
          ops.query(
            `INSERT INTO refresh_requests (request_id, item_id, status) VALUES ('x', 'y', 'requested')`,
          ),
        ).rejects.toThrow(/permission denied/);
        await expect(ops.query('SELECT * FROM item_access_tokens')).rejects.toThrow(
          /permission denied/,
        );
        // The stored reports are people's bank transactions: analytics' role only.
        for (const table of ['report_transactions', 'report_accounts', 'report_fetches']) {
          await expect(ops.query(`SELECT * FROM ${table} LIMIT 1`)).rejects.toThrow(
            /permission denied/,
          );
        }
      } finally {
        await ops.end();
        await world.rows(`DROP ROLE ${login}`);
      }
    });

    it('the views answer the common questions', async () => {
      const { itemId, e } = newItem();
      const longAgo = new Date(Date.now() - 3 * 3600_000).toISOString();
      await world.publish(e.requested(`${itemId}-r1`));
      await world.publish(e.accepted(`${itemId}-r1`, longAgo));
      const login = newItem();
      await world.publish(login.e.requested(`${login.itemId}-r1`));
      await world.publish(login.e.failed(`${login.itemId}-r1`, new Date().toISOString()));
      await untilItem(itemId, (r) => r.status === 'refreshing');
      await untilItem(login.itemId, (r) => r.status === 'failed');

      const stuck = await world.rows('SELECT item_id FROM ops_stuck_refreshes');
      expect(stuck.map((r) => r.item_id)).toContain(itemId);
      const recent = await world.rows(`SELECT item_id FROM stuck_refreshes('4 hours')`);
      expect(recent.map((r) => r.item_id)).not.toContain(itemId);
      const action = await world.rows('SELECT item_id FROM ops_items_needing_action');
      expect(action.map((r) => r.item_id)).toContain(login.itemId);
      const failures = await world.rows(
        `SELECT last_hour FROM ops_failures_by_code WHERE error_code = 'ITEM_LOGIN_REQUIRED'`,
      );
      expect(Number(failures[0]?.last_hour)).toBeGreaterThanOrEqual(1);
      const latency = await world.rows('SELECT * FROM ops_refresh_latency');
      expect(latency.length).toBeGreaterThanOrEqual(1);

      const metrics = await (await fetch(`${projector.url}/metrics`)).text();
      expect(metrics).toMatch(/projector_stuck_items\{[^}]*\} [1-9]/);
      // Caught up, a partition's lag is 0 in records and in seconds, however old its last record.
      const gauge = (name: string) =>
        new Map(
          [...metrics.matchAll(new RegExp(`^${name}\\{([^}]*)\\} (\\S+)$`, 'gm'))].map((m) => [
            (m[1] ?? '').replace(/service="[^"]*",?/, ''),
            Number(m[2]),
          ]),
        );
      const lagEvents = gauge('projector_lag_events');
      const lagSeconds = gauge('projector_lag_seconds');
      const caughtUp = [...lagEvents]
        .filter(([, behind]) => behind === 0)
        .map(([labels]) => labels);
      expect(caughtUp.length).toBeGreaterThan(0);
      expect(caughtUp.map((labels) => lagSeconds.get(labels))).toEqual(caughtUp.map(() => 0));
      expect(metrics).toMatch(/projector_events_applied_total\{[^}]*type="RefreshAccepted"/);
      expect(metrics).toMatch(
        /kafka_consumer_group_joins_total\{[^}]*group="[^"]*cashflow-projector"[^}]*\} [1-9]/,
      );
    });
  });

  describe('read API', () => {
    it('needs a bearer token', async () => {
      expect((await projector.get('/items', null)).status).toBe(401);
      expect((await projector.get('/items', 'not-a-token')).status).toBe(401);
      expect((await projector.get('/openapi.json', null)).status).toBe(200);
    });

    it("answers an Item's state, its refreshes, and 404 for an unknown Item", async () => {
      const { itemId, e } = newItem();
      await world.publish(e.requested(`${itemId}-r1`), e.requested(`${itemId}-r2`));
      const acceptedAt = new Date(Date.now() - 3600_000).toISOString();
      await world.publish(e.accepted(`${itemId}-r2`, acceptedAt));
      await untilItem(itemId, (r) => r.status === 'refreshing');

      const state = await projector.get(`/items/${itemId}/refresh-state`);
      expect(state.status).toBe(200);
      expect(state.body).toMatchObject({
        item_id: itemId,
        status: 'refreshing',
        stuck: true,
        latest_request_id: `${itemId}-r2`,
        accepted_at: acceptedAt,
      });
      const first = await projector.get(`/items/${itemId}/refreshes?limit=1`);
      expect(first.body.refreshes.map((r: { request_id: string }) => r.request_id)).toEqual([
        `${itemId}-r2`,
      ]);
      const second = await projector.get(
        `/items/${itemId}/refreshes?limit=1&cursor=${first.body.next_cursor}`,
      );
      expect(second.body.refreshes.map((r: { request_id: string }) => r.request_id)).toEqual([
        `${itemId}-r1`,
      ]);
      expect(second.body.next_cursor).toBeNull();

      const missing = await projector.get(`/items/item-${randomUUID()}/refresh-state`);
      expect(missing).toMatchObject({ status: 404, body: { error: { code: 'NOT_FOUND' } } });
      expect((await projector.get(`/items/item-${randomUUID()}/refreshes`)).status).toBe(404);
    });

    it('lists Items by status, error code and stuck, a page at a time', async () => {
      const failing = [newItem(), newItem(), newItem()];
      for (const { itemId, e } of failing) {
        await world.publish(e.requested(`${itemId}-r1`));
        await world.publish(e.failed(`${itemId}-r1`, '2026-11-24T10:00:01Z', 'NO_ACCOUNTS'));
      }
      for (const { itemId } of failing) await untilItem(itemId, (r) => r.status === 'failed');
      const seen: string[] = [];
      let cursor: string | null = null;
      do {
        const page: {
          status: number;
          body: { items: { item_id: string }[]; next_cursor: string | null };
        } = await projector.get(
          `/items?error_code=NO_ACCOUNTS&status=failed&limit=2${cursor ? `&cursor=${cursor}` : ''}`,
        );
        expect(page.status).toBe(200);
        seen.push(...page.body.items.map((i) => i.item_id));
        cursor = page.body.next_cursor;
      } while (cursor);
      expect(seen).toEqual(failing.map((f) => f.itemId).sort());

      const stuck = await projector.get('/items?stuck=true&limit=500');
      expect(stuck.body.items.every((i: { stuck: boolean }) => i.stuck)).toBe(true);
      const bad = await projector.get('/items?status=sideways');
      expect(bad).toMatchObject({ status: 400, body: { error: { code: 'INVALID_PARAMETER' } } });
      expect(bad.body.error.message).toMatch(/^status/);
      expect((await projector.get('/items?cursor=garbage')).status).toBe(400);
    });

    it("shows each Item's health from the worker's changes, newest first whatever their order, and lists those needing attention", async () => {
      const broken = newItem();
      const r1 = `${broken.itemId}-r1`;
      await world.publish(broken.e.requested(r1), broken.e.accepted(r1, '2026-11-24T10:00:02Z'));
      // The restoration is read before the change it follows: the newer one still wins.
      await world.publish(
        broken.e.restored(`${broken.itemId}-h2`, '2026-11-24T10:05:00Z'),
        broken.e.needsAttention(`${broken.itemId}-h1`, '2026-11-24T10:04:00Z'),
      );
      // Known from its health alone: no refresh status.
      const unheard = newItem();
      await world.publish(
        unheard.e.needsAttention(
          `${unheard.itemId}-h1`,
          '2026-11-24T11:00:00Z',
          'ACCESS_NOT_GRANTED',
        ),
      );
      // Both applied (their copies are kept in the same transaction as the rows they change).
      await world.until(
        'both health changes applied',
        'SELECT event_id FROM projection_events WHERE item_id = $1',
        [broken.itemId],
        (rows) => rows.length === 4,
      );
      const [row] = await untilItem(broken.itemId, () => true);
      expect(row).toMatchObject({
        status: 'refreshing',
        health_status: 'healthy',
        health_sequence: 2,
        health_event_id: `${broken.itemId}-h2`,
      });
      const [alone] = await untilItem(unheard.itemId, (r) => r.health_status !== 'healthy');
      expect(alone).toMatchObject({
        status: null,
        health_status: 'needs_user_action',
        health_reason: 'ACCESS_NOT_GRANTED',
      });

      const state = await projector.get(`/items/${unheard.itemId}/refresh-state`);
      expect(state.body).toMatchObject({
        status: null,
        health: {
          status: 'needs_user_action',
          reason: 'ACCESS_NOT_GRANTED',
          consent_expires_at: null,
          changed_at: '2026-11-24T11:00:00.000Z',
        },
      });
      await world.until(
        'the Item known from its health applied',
        'SELECT event_id FROM projection_events WHERE item_id = $1',
        [unheard.itemId],
        (rows) => rows.length === 1,
      );
      const needing = await projector.get('/items?needs_attention=true&limit=500');
      const ids = needing.body.items.map((i: { item_id: string }) => i.item_id);
      expect(ids).toContain(unheard.itemId);
      expect(ids).not.toContain(broken.itemId);
      const notStuck = await projector.get('/items?stuck=false&needs_attention=true&limit=500');
      expect(notStuck.body.items.map((i: { item_id: string }) => i.item_id)).toContain(
        unheard.itemId,
      );
      const view = await world.rows('SELECT item_id FROM ops_item_health');
      expect(view.map((r) => r.item_id)).toContain(unheard.itemId);
      expect(view.map((r) => r.item_id)).not.toContain(broken.itemId);
    });
  });
});
