import { createEvent, topicName } from '@cashflow/contracts';
import { EventPublisher } from '@cashflow/kafka';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes, randomUUID } from 'node:crypto';
import { testKafka } from '../support/kafka';
import { otlpReceiver, type ReceivedSpan } from '../support/otlp-receiver';
import { startSystem, type System } from '../support/system';
import { steps } from '../support/cli';
import { waitFor } from '../support/wait-for';

/**
 * One refresh followed across every app, each its own process exporting its spans over OTLP/HTTP
 * to a receiver in this test: an upstream's traceparent on RefreshRequested continues through
 * the worker, Plaid and the outcome into the projection; Plaid's webhook starts a trace of its
 * own, and the report's spans (the fetch, the projection's apply) link back to the refresh.
 */
describe('traces across the system', () => {
  let receiver: Awaited<ReturnType<typeof otlpReceiver>>;
  let system: System;
  let logs: string;

  beforeAll(async () => {
    receiver = await otlpReceiver();
    system = await startSystem({
      fetcher: {},
      env: { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url },
    });
    logs = mkdtempSync(join(tmpdir(), 'cashflow-tracing-'));
  });
  afterAll(async () => {
    const codes = await system.stop();
    expect(codes).toEqual([0, 0, 0, 0, 0]);
    await receiver.close();
    rmSync(logs, { recursive: true, force: true });
  });

  const inTrace = (traceId: string) => receiver.spans.filter((s) => s.traceId === traceId);
  const one = (spans: ReceivedSpan[], service: string, name: string) => {
    const found = spans.filter((s) => s.service === service && s.name === name);
    if (found.length !== 1) {
      const seen = spans.map((s) => `${s.service}: ${s.name}`).join('\n  ');
      throw new Error(
        `expected one ${service} span "${name}", found ${found.length}; seen:\n  ${seen}`,
      );
    }
    return found[0]!;
  };

  /** The spans when every name is among them, else undefined (spans arrive batch by batch). */
  const spansNamed = (spans: ReceivedSpan[], names: string[]) =>
    names.every((n) => spans.some((s) => s.name === n)) ? spans : undefined;

  /** The trace of the webhook that published `reportEventId`, once fetched and projected. */
  const reportTrace = (reportEventId: string) => {
    const published = receiver.spans.find(
      (s) =>
        s.service === 'webhook-ingress' && s.attributes['cloudevents.event_id'] === reportEventId,
    );
    return published
      ? spansNamed(inTrace(published.traceId), [
          'POST /webhooks/plaid',
          'verify webhook',
          `publish ${topicName('reportOutcomes', system.prefix)}`,
          'project ReportReady',
          'fetch report',
          'POST /cashflow_report/get',
          'project ReportFetched',
        ])
      : undefined;
  };

  it('follows one refresh from an upstream traceparent to the projection, the report linked', async () => {
    const item = await system.item();
    const traceId = randomBytes(16).toString('hex');
    const upstreamSpan = randomBytes(8).toString('hex');
    const requestId = randomUUID();
    const publisher = new EventPublisher(testKafka(system.prefix), system.prefix);
    await publisher.connect();
    await publisher.publish(
      createEvent(
        'RefreshRequested',
        { item_id: item.item_id, days_requested: 90 },
        {
          id: requestId,
          source: 'urn:test:underwriting',
          time: new Date().toISOString(),
          traceparent: `00-${traceId}-${upstreamSpan}-01`,
          tracestate: 'underwriting=loan-42',
        },
      ),
    );
    await publisher.disconnect();

    const [row] = await waitFor(
      'the request fetched in the projection',
      async () => {
        const rows = await system.rows(
          'SELECT status, plaid_request_id, report_event_id, fetched_at FROM refresh_requests WHERE request_id = $1',
          [requestId],
        );
        return rows[0]?.fetched_at ? rows : undefined;
      },
      60_000,
    );
    const topics = {
      requested: topicName('refreshRequested', system.prefix),
      outcomes: topicName('refreshOutcomes', system.prefix),
      reports: topicName('reportOutcomes', system.prefix),
      fetches: topicName('reportFetches', system.prefix),
    };

    // Spans reach the receiver in batches (every 5 s, and when an app stops).
    const refresh = await waitFor(
      'the refresh trace down to the projection',
      () =>
        spansNamed(inTrace(traceId), [
          `process ${topics.requested}`,
          'refresh call',
          'POST /cashflow_report/refresh',
          `publish ${topics.outcomes}`,
          'project RefreshRequested',
          'project RefreshAccepted',
        ]),
      30_000,
    );
    const consume = one(refresh, 'refresh-worker', `process ${topics.requested}`);
    expect(consume.parentSpanId).toBe(upstreamSpan);
    expect(consume.attributes).toMatchObject({
      'cloudevents.event_id': requestId,
      'cashflow.item_id': item.item_id,
    });
    const call = one(refresh, 'refresh-worker', 'refresh call');
    expect(call.parentSpanId).toBe(consume.spanId);
    const plaid = one(refresh, 'refresh-worker', 'POST /cashflow_report/refresh');
    expect(plaid.parentSpanId).toBe(call.spanId);
    expect(plaid.attributes).toMatchObject({
      'http.response.status_code': 200,
      'plaid.request_id': row!.plaid_request_id,
    });
    expect(one(refresh, 'refresh-worker', `publish ${topics.outcomes}`).parentSpanId).toBe(
      consume.spanId,
    );
    // The projector applies the request under the upstream's span, the outcome under the worker's.
    expect(one(refresh, 'projector', 'project RefreshRequested').parentSpanId).toBe(upstreamSpan);
    expect(one(refresh, 'projector', 'project RefreshAccepted').parentSpanId).toBe(consume.spanId);

    // The webhook's trace: received, verified, published, fetched and projected, linked back.
    const received = await waitFor(
      'the report trace with its fetch and projection',
      () => reportTrace(row!.report_event_id as string),
      30_000,
    );
    const webhook = one(received, 'webhook-ingress', 'POST /webhooks/plaid');
    expect(webhook.traceId).not.toBe(traceId);
    expect(webhook.parentSpanId).toBe('');
    expect(webhook.attributes).toMatchObject({ 'http.response.status_code': 200 });
    expect(one(received, 'webhook-ingress', 'verify webhook').parentSpanId).toBe(webhook.spanId);
    const published = one(received, 'webhook-ingress', `publish ${topics.reports}`);
    expect(published.attributes['cloudevents.event_id']).toBe(row!.report_event_id);

    const applied = one(received, 'projector', 'project ReportReady');
    expect(applied.links.map((l) => l.traceId)).toContain(traceId);
    expect(applied.attributes['cashflow.completed_requests']).toBe(1);
    const fetch = one(received, 'report-fetcher', 'fetch report');
    expect(fetch.links.map((l) => l.traceId)).toContain(traceId);
    expect(fetch.attributes).toMatchObject({ 'cashflow.fetch.outcome': 'stored' });
    const pages = received.filter((s) => s.name === 'POST /cashflow_report/get');
    expect(pages.length).toBeGreaterThan(0);
    expect(pages.every((p) => p.parentSpanId === fetch.spanId)).toBe(true);
    expect(one(received, 'projector', 'project ReportFetched').parentSpanId).not.toBe('');

    // No span carries the Item's access token or a credential, as `check` confirms.
    expect(JSON.stringify(receiver.spans)).not.toContain(item.access_token);
    writeFileSync(join(logs, 'spans.jsonl'), receiver.file());
    const check = await system.check(logs, '--spans', join(logs, 'spans.jsonl'), '--json');
    expect(check.stderr).toBe('');
    const findings = JSON.parse(check.stdout) as { findings: { name: string; holds: boolean }[] };
    expect(
      findings.findings.find((f) => f.name === 'no secret in any topic, log or span'),
    ).toMatchObject({ holds: true });
  });

  it('links the report to a refresh asked for without a traceparent (the worker starts its trace)', async () => {
    const item = await system.item();
    const run = await system.cli(['refresh', item.item_id, '--wait', '--json']);
    expect(run.code).toBe(0);
    const requestId = steps(run.stdout)[0]!.request_id;
    const [row] = await waitFor(
      'the request fetched in the projection',
      async () => {
        const rows = await system.rows(
          'SELECT report_event_id, fetched_at FROM refresh_requests WHERE request_id = $1',
          [requestId],
        );
        return rows[0]?.fetched_at ? rows : undefined;
      },
      60_000,
    );
    const topic = topicName('refreshRequested', system.prefix);
    const consume = await waitFor(
      "the worker's span for the request",
      () =>
        receiver.spans.find(
          (s) =>
            s.name === `process ${topic}` && s.attributes['cloudevents.event_id'] === requestId,
        ),
      30_000,
    );
    // No upstream span: the worker's is the first of the trace.
    expect(consume.parentSpanId).toBe('');
    const received = await waitFor(
      'the report trace with its fetch and projection',
      () => reportTrace(row!.report_event_id as string),
      30_000,
    );
    const applied = one(received, 'projector', 'project ReportReady');
    expect(applied.links).toContainEqual({ traceId: consume.traceId, spanId: consume.spanId });
    expect(one(received, 'report-fetcher', 'fetch report').links).toContainEqual({
      traceId: consume.traceId,
      spanId: consume.spanId,
    });
  });
});
