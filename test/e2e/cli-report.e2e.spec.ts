import { decodeEvent, topicName, type CashflowEvent } from '@cashflow/contracts';
import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { cli } from '../support/cli';
import { KAFKA_BROKERS } from '../support/infra';
import { collect } from '../support/kafka';
import { projectorWorld, type ProjectorWorld } from '../support/projector';
import { eventsFor } from '../support/refresh-histories';
import { storeFetch, storeReport } from '../support/stored-reports';

/** Stands in for the report fetcher's admin API: records each request, answers as it does. */
async function fakeReportFetcher(token: string, known: ReadonlySet<string>) {
  const received: { method?: string; url?: string; authorization?: string }[] = [];
  const server: Server = createServer((req: IncomingMessage, res) => {
    received.push({ method: req.method, url: req.url, authorization: req.headers.authorization });
    const send = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    const match = /^\/items\/([^/]+)\/report-fetch$/.exec(req.url ?? '');
    if (req.headers.authorization !== `Bearer ${token}`) {
      return send(401, { error: { code: 'UNAUTHENTICATED', message: 'bearer token required' } });
    }
    const itemId = match ? decodeURIComponent(match[1]!) : undefined;
    if (req.method !== 'POST' || !itemId) return send(404, { error: 'no such route' });
    if (!known.has(itemId)) {
      return send(404, {
        error: {
          code: 'NO_REPORT',
          message: `no report of item ${itemId} is known to the fetcher`,
        },
      });
    }
    send(202, { item_id: itemId, report_event_id: 'report-7', days_requested: 365, due: true });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (!address || typeof address === 'string') throw new Error('no address');
  return {
    url: `http://127.0.0.1:${address.port}`,
    received,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

describe('cashflow-refresh report and refresh --wait until fetched', () => {
  let world: ProjectorWorld;

  beforeAll(async () => {
    world = await projectorWorld({ partitions: 2 });
  });
  afterAll(async () => {
    await world.close();
  });

  describe('report show and report transactions', () => {
    let projector: Awaited<ReturnType<ProjectorWorld['startProjector']>>;
    let env: Record<string, string>;

    beforeAll(async () => {
      projector = await world.startProjector();
      env = { PROJECTOR_URL: projector.url, PROJECTOR_API_TOKEN: world.token };
    });
    afterAll(async () => {
      await projector.close();
    });

    it('report show prints the summary, the accounts and the newest transactions', async () => {
      const { itemId, fetchId } = await storeReport(world.rows);
      await storeFetch(world.rows, itemId, {
        outcome: 'failed',
        finishedAt: '2026-11-25T08:00:00Z',
      });
      const shown = await cli(['report', 'show', itemId], env);
      expect(shown).toMatchObject({ code: 0, stderr: '' });
      const lines = shown.stdout.split('\n');
      expect(lines.slice(0, 6)).toEqual([
        `${itemId}: report fetched 2026-11-24T10:01:00.000Z (fetch ${fetchId})`,
        '  data as of 2026-11-24T10:00:00.000Z, 90 days from 2026-08-27',
        '  4 transactions stored (1 removed), dated 2026-10-02 to 2026-11-22',
        '  that fetch: 5 returned, 5 added, 0 modified, 0 removed',
        '  insights: 3 months; 2026-11-01 to 2026-11-30: revenue 5120.5, ending balance 4200, average daily net 12.25',
        '  last fetch FAILED at 2026-11-25T08:00:00.000Z: ITEM_LOGIN_REQUIRED (plaid): the login details of this item have changed',
      ]);
      expect(shown.stdout).toMatch(/acc-checking\s+Plaid Checking\s+depository\s+checking\s+0000/);
      expect(shown.stdout).toMatch(/2026-11-22\s+t-c\s+acc-card\s+12\.5\s+false\s+Coffee t-c/);
      expect(shown.stdout).not.toContain('t-d');

      const json = await cli(['report', 'show', itemId, '--json'], env);
      const answer = JSON.parse(json.stdout) as {
        fetch: { fetch_id: string };
        newest_transactions: { transaction_id: string }[];
      };
      expect(answer.fetch.fetch_id).toBe(fetchId);
      expect(answer.newest_transactions.map((t) => t.transaction_id)).toEqual([
        't-c',
        't-a',
        't-b',
        't-e',
      ]);
    });

    it("status shows the Item's newest fetch and each refresh's seconds to fetched", async () => {
      const itemId = `item-${randomUUID()}`;
      const e = eventsFor(itemId);
      const report = { id: `${itemId}-x1`, receivedAt: '2026-11-24T10:01:00.000Z' };
      await world.publish(
        e.requested(`${itemId}-r1`, 90, '2026-11-24T10:00:00.000Z'),
        e.accepted(`${itemId}-r1`, '2026-11-24T10:00:02.000Z'),
        e.ready(report.id, report.receivedAt),
        e.fetched(`${itemId}-f1`, '2026-11-24T10:01:30.000Z', report, [`${itemId}-r1`], 812),
      );
      await world.until(
        'the fetch projected',
        'SELECT fetched_at FROM refresh_requests WHERE item_id = $1',
        [itemId],
        (rows) => rows[0]?.fetched_at != null,
      );
      const status = await cli(['status', itemId], env);
      expect(status.code).toBe(0);
      expect(status.stdout).toContain(
        '  report fetched 2026-11-24T10:01:30.000Z: data as of 2026-11-24T10:01:25.000Z, 812 transactions',
      );
      expect(status.stdout).toMatch(
        new RegExp(`${itemId}-r1\\s+ready\\s+\\S+\\s+2\\s+58\\s+90$`, 'm'),
      );
    });

    it('report show says why when nothing was fetched', async () => {
      const itemId = `item-${randomUUID()}`;
      const run = await cli(['report', 'show', itemId], env);
      expect(run.code).toBe(1);
      expect(run.stderr).toBe(
        `error: no report of item ${itemId} has been fetched (the report fetcher stores one after CASHFLOW_REPORT_READY)\n`,
      );
    });

    it('report transactions follows the pages up to --limit, removed ones on request', async () => {
      const { itemId } = await storeReport(world.rows, 620);
      const many = await cli(['report', 'transactions', itemId, '--limit', '600', '--json'], env);
      expect(many.code).toBe(0);
      const ids = many.stdout
        .trim()
        .split('\n')
        .map((line) => (JSON.parse(line) as { transaction_id: string }).transaction_id);
      expect(ids).toEqual(Array.from({ length: 600 }, (_, n) => `t-${String(n).padStart(5, '0')}`));

      const small = await storeReport(world.rows);
      const removed = await cli(
        ['report', 'transactions', small.itemId, '--include-removed', '--since', '2026-11-01'],
        env,
      );
      expect(removed.code).toBe(0);
      const rows = removed.stdout.trim().split('\n');
      expect(rows[0]).toMatch(
        /^date\s+transaction_id\s+account_id\s+amount\s+pending\s+name\s+removed_at$/,
      );
      expect(rows.slice(1).map((r) => r.split(/\s+/)[1])).toEqual(['t-c', 't-d', 't-a', 't-b']);
      expect(rows[2]).toMatch(/t-d .*2026-11-24T10:01:00\.000Z$/);

      const bad = await cli(['report', 'transactions', small.itemId, '--since', 'tuesday'], env);
      expect(bad.code).toBe(1);
      expect(bad.stderr).toMatch(/^error: --since: /);
    });
  });

  describe('report fetch', () => {
    it('asks the report fetcher with the admin token; a 404 is a one-line error', async () => {
      const token = randomBytes(24).toString('hex');
      const known = `item-${randomUUID()}`;
      const fetcher = await fakeReportFetcher(token, new Set([known]));
      try {
        const env = { REPORT_FETCHER_URL: fetcher.url, ADMIN_API_TOKEN: token };
        const asked = await cli(['report', 'fetch', known], env);
        expect(asked).toMatchObject({ code: 0, stderr: '' });
        expect(asked.stdout).toBe(`fetch asked for ${known}: report report-7, 365 days, due now\n`);
        expect(fetcher.received).toEqual([
          {
            method: 'POST',
            url: `/items/${known}/report-fetch`,
            authorization: `Bearer ${token}`,
          },
        ]);
        const json = await cli(['report', 'fetch', known, '--json'], env);
        expect(JSON.parse(json.stdout)).toEqual({
          item_id: known,
          report_event_id: 'report-7',
          days_requested: 365,
          due: true,
        });

        const unknown = `item-${randomUUID()}`;
        const missing = await cli(['report', 'fetch', unknown], env);
        expect(missing.code).toBe(1);
        expect(missing.stderr).toBe(
          `error: no report of item ${unknown} is known to the fetcher\n`,
        );
        const noToken = await cli(['report', 'fetch', known], {
          REPORT_FETCHER_URL: fetcher.url,
        });
        expect(noToken.code).toBe(1);
        expect(noToken.stderr).toContain('ADMIN_API_TOKEN is not set');
      } finally {
        await fetcher.close();
      }
    });
  });

  describe('refresh --wait', () => {
    const kafkaEnv = () => ({
      KAFKA_BROKERS: KAFKA_BROKERS.join(','),
      KAFKA_TOPIC_PREFIX: world.prefix,
    });

    /** Starts `refresh --wait` and returns the request it published, and the run. */
    async function refreshWaiting(itemId: string, args: string[]) {
      const requests = await collect(world.kafka, [topicName('refreshRequested', world.prefix)]);
      const running = cli(
        ['refresh', itemId, '--wait', '--json', '--timeout', '60', ...args],
        kafkaEnv(),
      );
      const [record] = await requests.until(1, (r) => r.message.key?.toString() === itemId);
      await requests.stop();
      const decoded = decodeEvent(record!.message);
      if (!decoded.ok) throw new Error(decoded.error.message);
      return { requestId: decoded.value.metadata.id, running };
    }

    /** The request accepted now and its report received a second later. */
    function acceptedAndReady(itemId: string, requestId: string) {
      const e = eventsFor(itemId);
      const report = { id: `${itemId}-x1`, receivedAt: new Date(Date.now() + 1000).toISOString() };
      const events: CashflowEvent[] = [
        e.accepted(requestId, new Date().toISOString()),
        e.ready(report.id, report.receivedAt),
      ];
      return { events, report };
    }

    const steps = (stdout: string) =>
      stdout
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as { step: string; detail: Record<string, unknown> });

    it('--until fetched ends at the ReportFetched naming the request', async () => {
      const itemId = `item-${randomUUID()}`;
      const { requestId, running } = await refreshWaiting(itemId, ['--until', 'fetched']);
      const { events, report } = acceptedAndReady(itemId, requestId);
      await world.publish(...events);
      const e = eventsFor(itemId);
      // A fetch of the report for other requests does not end the wait; the one naming it does.
      await world.publish(
        e.fetched(`${itemId}-f0`, new Date().toISOString(), report, ['someone-else']),
        e.fetched(`${itemId}-f1`, new Date().toISOString(), report, [requestId], 77),
      );
      const run = await running;
      expect(run.code).toBe(0);
      const seen = steps(run.stdout);
      expect(seen.map((s) => s.step)).toEqual(['requested', 'accepted', 'ready', 'fetched']);
      expect(seen[0]!.detail.until).toBe('fetched');
      expect(seen[3]!.detail).toMatchObject({ transactions: 77 });
    });

    it('ends at fetched by default while a report fetcher is in its group, and exits 3 when the fetch fails', async () => {
      // A member in the report fetcher's consumer group: a fetcher runs.
      const fetcherGroup = world.kafka.consumer({
        groupId: `${world.prefix}cashflow-report-fetcher`,
      });
      await fetcherGroup.connect();
      const joined = new Promise<void>((resolve) =>
        fetcherGroup.on(fetcherGroup.events.GROUP_JOIN, () => resolve()),
      );
      await fetcherGroup.subscribe({ topics: [topicName('reportOutcomes', world.prefix)] });
      await fetcherGroup.run({ eachMessage: () => Promise.resolve() });
      await joined;
      try {
        const itemId = `item-${randomUUID()}`;
        const { requestId, running } = await refreshWaiting(itemId, []);
        const { events, report } = acceptedAndReady(itemId, requestId);
        await world.publish(
          ...events,
          eventsFor(itemId).fetchFailed(`${itemId}-f1`, new Date().toISOString(), report, [
            requestId,
          ]),
        );
        const run = await running;
        expect(run.code).toBe(3);
        const seen = steps(run.stdout);
        expect(seen.map((s) => s.step)).toEqual(['requested', 'accepted', 'ready', 'fetch_failed']);
        expect(seen[0]!.detail.until).toBe('fetched');
        expect(seen[3]!.detail).toMatchObject({ error_code: 'ITEM_LOGIN_REQUIRED' });
      } finally {
        await fetcherGroup.disconnect();
      }
    });

    it('--until is checked', async () => {
      const run = await cli(['refresh', 'item-1', '--wait', '--until', 'stored'], kafkaEnv());
      expect(run.code).toBe(1);
      expect(run.stderr).toMatch(/^error: --until: /);
      const alone = await cli(['refresh', 'item-1', '--until', 'fetched'], kafkaEnv());
      expect(alone.code).toBe(1);
      expect(alone.stderr).toBe('error: --until: only with --wait\n');
    });
  });
});
