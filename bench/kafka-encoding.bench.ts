/**
 * Kafka record encoding: kafkajs's own Encoder against the same with libs/kafka's patch
 * (kafkajs-encoder.ts), side by side in one run, each in a process of its own, alternating.
 * Prints a table and writes bench/results/<date>-kafka-encoding.json.
 *
 *   npm run bench:encoding                # 200,000 records a run, three runs each
 *   npm run bench:encoding -- --quick     # 50,000 records, two runs each
 *
 * The records are shaped like the two the apps send most: a changelog record (a transaction's
 * JSON, three headers) and an outcome (a RefreshAccepted's JSON, ten CloudEvents headers), in
 * produce requests of 500 records, as kafkajs builds them before a send. CPU per record is the
 * process's user + system time over the encoding alone.
 */
import { spawnSync } from 'node:child_process';
import { patchKafkajsEncoder } from '../libs/kafka/src/kafkajs-encoder';
import { machine, runBench, table, writeResults } from './support';

const quick = process.argv.includes('--quick');
const RECORDS = quick ? 50_000 : 200_000;
const RUNS = quick ? 2 : 3;
const PER_REQUEST = 500;

type Shape = 'changelog' | 'outcome';

interface Message {
  key: string;
  value: string;
  headers: Record<string, string>;
  timestamp: number;
}

interface ProduceRequest {
  (options: {
    acks: number;
    timeout: number;
    topicData: {
      topic: string;
      partitions: {
        partition: number;
        messages: {
          key: string;
          value: string;
          headers: Record<string, string>;
          timestamp: number;
        }[];
      }[];
    }[];
  }): { encode(): Promise<{ buffer: Buffer }> };
}

function messages(shape: Shape, count: number, at: number): Message[] {
  return Array.from({ length: count }, (_, i): Message =>
    shape === 'changelog'
      ? {
          key: `item-${i % 97}:txn-${i}`,
          value: JSON.stringify({
            transaction_id: `txn-${i}-${'t'.repeat(24)}`,
            account_id: `acc-${'a'.repeat(30)}`,
            amount: (i % 1000) / 7,
            date: '2026-11-30',
            pending: false,
            name: `Merchant ${i} ${'n'.repeat(60)}`,
            merchant_name: `Merchant ${i}`,
            personal_finance_category: {
              primary: 'FOOD_AND_DRINK',
              detailed: 'FOOD_AND_DRINK_GROCERIES',
            },
          }),
          headers: {
            'content-type': 'application/json',
            'cashflow-change': 'added',
            'cashflow-fetch-id': '6f1c2d0e-5b7a-4c1e-9a43-2f8d6b0c9e11',
          },
          timestamp: at,
        }
      : {
          key: `item-${i}`,
          value: JSON.stringify({
            item_id: `item-${i}`,
            refresh_request_id: `req-${i}`,
            plaid_request_id: `plaid-${'p'.repeat(12)}`,
            days_requested: 365,
            attempts: 1,
            accepted_at: '2026-12-04T20:00:00.000Z',
          }),
          headers: {
            ce_specversion: '1.0',
            ce_id: `6f1c2d0e-5b7a-4c1e-9a43-${String(i).padStart(12, '0')}`,
            ce_source: 'cashflow-refresh/refresh-worker',
            ce_type: 'RefreshAccepted',
            ce_time: '2026-12-04T20:00:00.000Z',
            ce_subject: `item-${i}`,
            ce_correlationid: `req-${i}`,
            ce_causationid: `req-${i}`,
            ce_traceparent: `00-${'1'.repeat(32)}-${'2'.repeat(16)}-01`,
            'content-type': 'application/json',
          },
          timestamp: at,
        },
  );
}

/** In a child: encode RECORDS records of `shape`, print CPU µs per record. */
async function child(shape: Shape, patched: boolean): Promise<void> {
  if (patched) patchKafkajsEncoder();
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- kafkajs's internals
  const produce = require('kafkajs/src/protocol/requests/produce/v3/request') as ProduceRequest;
  const batch = messages(shape, PER_REQUEST, 1_790_000_000_000);
  const encode = () =>
    produce({
      acks: -1,
      timeout: 30_000,
      topicData: [{ topic: 'cashflow.t', partitions: [{ partition: 0, messages: batch }] }],
    }).encode();
  for (let i = 0; i < 20; i++) await encode(); // warm-up
  const before = process.cpuUsage();
  let bytes = 0;
  for (let done = 0; done < RECORDS; done += PER_REQUEST) bytes = (await encode()).buffer.length;
  const used = process.cpuUsage(before);
  process.stdout.write(
    `${JSON.stringify({ us_per_record: (used.user + used.system) / RECORDS, request_bytes: bytes })}\n`,
  );
}

function measure(shape: Shape, patched: boolean): { us_per_record: number; request_bytes: number } {
  const run = spawnSync(
    process.execPath,
    [__filename, '--child', shape, patched ? 'patched' : 'stock', ...(quick ? ['--quick'] : [])],
    { encoding: 'utf8' },
  );
  if (run.status !== 0) throw new Error(`encoding child failed: ${run.stderr}`);
  return JSON.parse(run.stdout.trim().split('\n').at(-1)!) as {
    us_per_record: number;
    request_bytes: number;
  };
}

function main(): void {
  const results: Record<string, { stock_us: number[]; patched_us: number[]; bytes: number }> = {};
  for (const shape of ['changelog', 'outcome'] as const) {
    const stock: number[] = [];
    const patched: number[] = [];
    let bytes = 0;
    for (let r = 0; r < RUNS; r++) {
      const a = measure(shape, false);
      const b = measure(shape, true);
      if (a.request_bytes !== b.request_bytes)
        throw new Error(`${shape}: the two wrote different sizes`);
      stock.push(a.us_per_record);
      patched.push(b.us_per_record);
      bytes = a.request_bytes;
    }
    results[shape] = { stock_us: stock, patched_us: patched, bytes };
  }
  const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
  const round = (x: number) => Math.round(x * 100) / 100;
  const summary = Object.fromEntries(
    Object.entries(results).map(([shape, r]) => [
      shape,
      {
        stock_us_per_record: round(mean(r.stock_us)),
        patched_us_per_record: round(mean(r.patched_us)),
        patched_share_of_stock_pct: Math.round((mean(r.patched_us) / mean(r.stock_us)) * 1000) / 10,
        runs: r,
      },
    ]),
  );
  process.stdout.write(
    `\n${table([
      [
        'records (500 per produce request)',
        'kafkajs µs/record',
        'patched µs/record',
        'patched / kafkajs',
      ],
      ...Object.entries(summary).map(([shape, s]) => [
        shape,
        s.stock_us_per_record,
        s.patched_us_per_record,
        `${s.patched_share_of_stock_pct}%`,
      ]),
    ])}\n\n`,
  );
  const result = {
    date: new Date().toISOString(),
    quick,
    machine: machine(),
    records_per_run: RECORDS,
    runs: RUNS,
    ...summary,
  };
  writeResults('kafka-encoding', quick, result);
}

const at = process.argv.indexOf('--child');
if (at >= 0) {
  void child(process.argv[at + 1] as Shape, process.argv[at + 2] === 'patched');
} else {
  runBench(() => Promise.resolve().then(main));
}
