import { topicName } from '@cashflow/contracts';
import { partitioner } from '@cashflow/kafka';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { KAFKA_BROKERS } from '../support/infra';
import { collect, testKafka } from '../support/kafka';
import { REPO_ROOT } from '../support/processes';
import { startSystem, type System } from '../support/system';

/** The shell block the README gives teams not on Node, between its kcat-interop markers. */
function readmeKcatCommands(): string {
  const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
  const section = /<!-- kcat-interop:start -->([\s\S]*?)<!-- kcat-interop:end -->/.exec(readme);
  const block = section && /```sh\n([\s\S]*?)```/.exec(section[1]!);
  if (!block) throw new Error('README.md has no ```sh block between the kcat-interop markers');
  return block[1]!;
}

function bash(script: string, env: Record<string, string>) {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const child = spawn('bash', ['--norc', '-euo', 'pipefail', '-c', script], {
      env: { PATH: process.env.PATH ?? '', ...env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

/** `name=value,...` as kcat's %h prints headers. */
const headers = (line: string) =>
  Object.fromEntries(
    line
      .split('\t')[0]!
      .split(',')
      .map((h) => [h.slice(0, h.indexOf('=')), h.slice(h.indexOf('=') + 1)]),
  );
const data = (line: string) =>
  JSON.parse(line.slice(line.indexOf('\t') + 1)) as Record<string, unknown>;

/**
 * A team not on Node integrates with kcat alone: the README's commands, run as written, publish a
 * hand-written RefreshRequested that the worker accepts and print its outcome and report.
 */
describe('kcat interop (the README commands)', () => {
  let system: System;

  beforeAll(async () => {
    system = await startSystem();
  });
  afterAll(async () => {
    await system.stop();
  });

  it('publishes a RefreshRequested by hand and reads RefreshAccepted, then ReportReady', async () => {
    // The README's demo Item, in this test's own sandbox and topics.
    await system.item({ item_id: 'item-demo-ready' });
    const run = await bash(readmeKcatCommands(), {
      KAFKA_BROKERS: KAFKA_BROKERS.join(','),
      KAFKA_TOPIC_PREFIX: system.prefix,
    });
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);

    const [outcome, report] = run.stdout.trim().split('\n');
    expect(headers(outcome!)).toMatchObject({
      ce_type: 'cashflow-refresh.RefreshAccepted.v1',
      ce_subject: 'item-demo-ready',
    });
    const requestId = headers(outcome!).ce_correlationid;
    expect(data(outcome!)).toMatchObject({
      item_id: 'item-demo-ready',
      refresh_request_id: requestId,
      days_requested: 90,
    });
    expect(headers(report!)).toMatchObject({ ce_type: 'cashflow-refresh.ReportReady.v1' });
    expect(data(report!)).toMatchObject({
      item_id: 'item-demo-ready',
      webhook_code: 'CASHFLOW_REPORT_READY',
    });

    // The projection took the hand-written request like any other.
    const row = await system.itemState('item-demo-ready', (r) => r.status === 'ready');
    expect(row).toMatchObject({ latest_request_id: requestId, days_requested: 90 });
    const [request] = await system.rows(
      'SELECT requested_by FROM refresh_requests WHERE request_id = $1',
      [requestId],
    );
    expect(request).toEqual({ requested_by: 'kcat' });

    // kcat's murmur2_random put the key on the partition our own producers choose for it.
    const topic = topicName('refreshRequested', system.prefix);
    const reader = collect(testKafka(system.prefix), [topic]);
    const [record] = await (await reader).until(1);
    await (await reader).stop();
    const partitionMetadata = [0, 1, 2].map((partitionId) => ({
      partitionId,
      leader: 0,
      replicas: [0],
      isr: [0],
      partitionErrorCode: 0,
    }));
    const ours = partitioner()({
      topic,
      partitionMetadata,
      message: { key: 'item-demo-ready', value: null },
    });
    expect(record!.partition).toBe(ours);
  });
});
