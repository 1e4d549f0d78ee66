import { loggerInto } from './logs';
import { TokenCipher, TokenVault } from '@cashflow/access-tokens';
import {
  createEvent,
  decodeEvent,
  topicName,
  type ReportFetchFailed,
  type ReportFetched,
} from '@cashflow/contracts';
import { EventPublisher, ensureTopics, readEndOffsets } from '@cashflow/kafka';
import { runMigrations } from '@cashflow/persistence';
import type { INestApplication } from '@nestjs/common';
import { randomBytes, randomUUID } from 'node:crypto';
import { DataSource } from 'typeorm';
import { loadReportFetcherConfig } from '../../apps/report-fetcher/src/config';
import { startReportFetcher } from '../../apps/report-fetcher/src/start-report-fetcher';
import type { ItemInput } from '../../apps/plaid-sandbox/src/items/item';
import { KAFKA_BROKERS, createTestDatabase, uniqueTopicPrefix } from './infra';
import { collect, testKafka, uncommitted } from './kafka';
import { startSandbox } from './plaid-sandbox';
import { freePort } from './ports';
import { waitFor } from './wait-for';

export type FetchEvent = ReportFetched | ReportFetchFailed;

/**
 * Everything the report fetcher needs, real: topics with a unique prefix, a migrated database
 * of its own with a token vault, the Plaid sandbox over HTTP, a publisher for the events the
 * fetcher reads, and readers of what it publishes.
 */
export async function fetcherWorld(sandboxEnv: Record<string, string> = {}) {
  const prefix = uniqueTopicPrefix();
  const kafka = testKafka(prefix);
  await ensureTopics(kafka, { prefix, partitions: 3, replicationFactor: 1 });
  const database = await createTestDatabase();
  await runMigrations({ url: database.url, applicationName: 'test' });
  const db = new DataSource({ type: 'postgres', url: database.url });
  await db.initialize();
  const keys = `test-key:${randomBytes(32).toString('base64')}`;
  const adminToken = randomBytes(24).toString('hex');
  const [keyId, key] = keys.split(':') as [string, string];
  const vault = new TokenVault(
    db,
    new TokenCipher(new Map([[keyId, Buffer.from(key, 'base64')]]), keyId),
  );
  const sandbox = await startSandbox(sandboxEnv);
  const publisher = new EventPublisher(kafka, prefix);
  await publisher.connect();
  const fetches = await collect(kafka, [topicName('reportFetches', prefix)]);
  const changelog = await collect(kafka, [topicName('transactions', prefix)]);
  const logLines: string[] = [];
  const apps: INestApplication[] = [];

  /**
   * Waits until the fetcher's group has consumed `topics` up to their ends as they are now, and,
   * with `idle`, until no fetch is due or under way.
   */
  async function consumed(topics: string[], idle: boolean, timeoutMs = 30_000): Promise<void> {
    const ends = await readEndOffsets(kafka, topics);
    const admin = kafka.admin();
    await admin.connect();
    try {
      await waitFor(
        idle ? 'the fetcher consumed everything and has nothing due' : 'the fetcher consumed',
        async () => {
          const group = `${prefix}cashflow-report-fetcher`;
          if ((await uncommitted(admin, group, ends)) > 0n) return undefined;
          if (!idle) return true;
          // A poll due later (REPORT_OVERDUE_AFTER_MS) is not work left now.
          const busy: { n: number }[] = await db.query(
            `SELECT count(*)::int AS n FROM report_fetch_items
                WHERE due_at <= now() OR claim_token IS NOT NULL`,
          );
          return busy[0]!.n === 0 ? true : undefined;
        },
        timeoutMs,
      );
    } finally {
      await admin.disconnect();
    }
  }

  /** Just before the data the sandbox serves for the Item now (now, for an Item it lacks). */
  async function acceptanceOfServedData(itemId: string): Promise<Date> {
    const { status, body } = await sandbox.admin('GET', `/items/${encodeURIComponent(itemId)}`);
    if (status !== 200) return new Date();
    const dataAt = Date.parse(
      (body.item as { last_successful_update_time: string }).last_successful_update_time,
    );
    return new Date(Math.min(Date.now(), dataAt - 1));
  }

  const fetchEvents = (): FetchEvent[] =>
    fetches.received.flatMap((r) => {
      const decoded = decodeEvent(r.message);
      return decoded.ok ? [decoded.value as FetchEvent] : [];
    });

  return {
    prefix,
    kafka,
    db,
    sandbox,
    vault,
    fetches,
    changelog,
    logLines,
    /** A sandbox Item (no webhook) whose token the vault holds: its item_id and token. */
    async item(input: ItemInput = {}): Promise<{ itemId: string; accessToken: string }> {
      const created = await sandbox.createItem({ webhook: null, ...input });
      await vault.put(created.item_id, created.access_token, 'tests');
      return { itemId: created.item_id, accessToken: created.access_token };
    },
    adminToken,
    /** Starts a fetcher in this process, its logs captured; returns the app and its URL. */
    async startFetcher(overrides: Record<string, string> = {}) {
      const config = loadReportFetcherConfig({
        ADMIN_API_TOKENS: `tests:${adminToken}`,
        KAFKA_BROKERS: KAFKA_BROKERS.join(','),
        KAFKA_TOPIC_PREFIX: prefix,
        DATABASE_URL: database.url,
        PLAID_ENV: 'local',
        PLAID_BASE_URL: sandbox.url,
        REPORT_FETCHER_PORT: String(await freePort()),
        TOKEN_ENCRYPTION_KEYS: keys,
        REPORT_FETCH_POLL_MS: '100',
        REPORT_FETCH_BACKOFF_BASE_MS: '20',
        REPORT_FETCH_BACKOFF_MAX_MS: '200',
        SHUTDOWN_GRACE_MS: '2000',
        LOG_LEVEL: 'info',
        ...overrides,
      });
      const logger = loggerInto(logLines, 'report-fetcher', 'debug');
      const app = await startReportFetcher(config, logger);
      apps.push(app);
      return { app, url: `http://127.0.0.1:${config.http.port}` };
    },
    /**
     * Publishes a RefreshAccepted for the Item and waits until the running fetcher has read it
     * (as in production, where Plaid's webhook follows the worker's outcome by seconds; a
     * report read first is the decider's unit specs' business); returns its request id. By
     * default it is the refresh whose data the sandbox serves now: accepted just before that
     * data's last_successful_update_time, as a real refresh is accepted before Plaid finishes it.
     */
    async accepted(itemId: string, days: number, at?: Date): Promise<string> {
      const acceptedAt = at ?? (await acceptanceOfServedData(itemId));
      const requestId = randomUUID();
      await publisher.publish(
        createEvent(
          'RefreshAccepted',
          {
            item_id: itemId,
            refresh_request_id: requestId,
            plaid_request_id: `req-${randomUUID()}`,
            days_requested: days,
            attempts: 1,
            accepted_at: acceptedAt.toISOString(),
          },
          {
            id: randomUUID(),
            source: 'urn:test:worker',
            time: acceptedAt.toISOString(),
            correlationId: requestId,
          },
        ),
      );
      if (apps.length > 0) await consumed([topicName('refreshOutcomes', prefix)], false);
      return requestId;
    },
    /**
     * Publishes a ReportReady for the Item (as the ingress would), or a ReportFailed when
     * `errorCode` is given; returns its event id.
     */
    async reportReady(
      itemId: string,
      receivedAt = new Date(),
      errorCode?: string,
    ): Promise<string> {
      const id = randomUUID();
      const error = errorCode
        ? {
            error_type: 'ITEM_ERROR',
            error_code: errorCode,
            error_message: 'the report could not be produced',
            display_message: null,
          }
        : null;
      const webhook = {
        webhook_type: 'CASHFLOW_REPORT',
        webhook_code: 'CASHFLOW_REPORT_READY',
        item_id: itemId,
        error,
        environment: 'sandbox',
      };
      const data = {
        item_id: itemId,
        webhook_type: webhook.webhook_type,
        webhook_code: webhook.webhook_code,
        environment: 'sandbox',
        received_at: receivedAt.toISOString(),
        delivery_id: randomBytes(32).toString('hex'),
        webhook,
      };
      const meta = { id, source: 'urn:test:ingress', time: receivedAt.toISOString() };
      await publisher.publish(
        error
          ? createEvent('ReportFailed', { ...data, error }, meta)
          : createEvent('ReportReady', { ...data, found_by: 'webhook' }, meta),
      );
      return id;
    },
    /** Every fetch event seen so far. */
    allFetchEvents: fetchEvents,
    /** The fetch events of an Item seen so far. */
    fetchEventsOf(itemId: string): FetchEvent[] {
      return fetchEvents().filter((e) => e.data.item_id === itemId);
    },
    /** Waits for `count` fetch events of the Item and returns them. */
    async untilFetches(itemId: string, count = 1, timeoutMs = 30_000): Promise<FetchEvent[]> {
      return waitFor(
        `${count} fetch events of ${itemId}`,
        () => {
          const seen = fetchEvents().filter((e) => e.data.item_id === itemId);
          return seen.length >= count ? seen : undefined;
        },
        timeoutMs,
      );
    },
    /**
     * Resolves once the fetcher's group has consumed everything published so far and no fetch
     * is due or under way: what it will do about those events is done.
     */
    async settled(timeoutMs = 30_000): Promise<void> {
      await consumed(
        [topicName('reportOutcomes', prefix), topicName('refreshOutcomes', prefix)],
        true,
        timeoutMs,
      );
    },
    /** Stored transactions of the Item that are not removed, by id. */
    async stored(itemId: string): Promise<Map<string, Record<string, unknown>>> {
      const rows: { transaction_id: string; content: Record<string, unknown> }[] = await db.query(
        `SELECT transaction_id, content FROM report_transactions
          WHERE item_id = $1 AND removed_at IS NULL`,
        [itemId],
      );
      return new Map(rows.map((r) => [r.transaction_id, r.content]));
    },
    /** Every transaction Plaid (the sandbox) serves for the Item over `days`, by id. */
    async served(accessToken: string, days: number): Promise<Map<string, Record<string, unknown>>> {
      const all = new Map<string, Record<string, unknown>>();
      let cursor = '';
      for (;;) {
        const page = await sandbox.plaid('/cashflow_report/get', {
          access_token: accessToken,
          days_requested: days,
          count: 500,
          cursor,
        });
        if (page.status !== 200) throw new Error(`/get answered ${page.status}`);
        for (const t of page.body.transactions as Record<string, unknown>[]) {
          all.set(t.transaction_id as string, t);
        }
        if (!page.body.has_more) return all;
        cursor = page.body.next_cursor as string;
      }
    },
    async close() {
      if (process.env.SHOW_FETCHER_LOGS) {
        process.stderr.write(
          logLines.filter((l) => /"level":"(warn|error|fatal)"/.test(l)).join(''),
        );
      }
      for (const app of apps) await app.close().catch(() => undefined);
      await fetches.stop();
      await changelog.stop();
      await publisher.disconnect();
      await sandbox.close();
      await db.destroy();
      await database.drop();
    },
  };
}
export type FetcherWorld = Awaited<ReturnType<typeof fetcherWorld>>;
