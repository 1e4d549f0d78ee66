/**
 * Every benchmark, then the soak's short form, one after another (never side by side: each
 * needs the machine to itself), into one dated JSON file and a markdown summary with the
 * machine's description, so runs on different days or machines can be compared.
 *
 *   npm run bench              # the full benchmarks + a 2-minute soak
 *   npm run bench -- --quick   # the quick form of each
 *
 * Each run is compared with the previous summary of the same form in bench/results/, when there
 * is one: every figure's change is printed and a drop of more than 15% flagged (bench/compare.ts).
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { changeTable, compare } from './compare';
import { ROOT, ensureInfra, machine, runBench, stopInfra } from './support';

const quick = process.argv.includes('--quick');

const BENCHES = [
  {
    name: 'refresh-worker',
    entry: 'bench/refresh-worker.bench.js',
    args: quick ? ['--quick'] : [],
  },
  {
    name: 'webhook-ingress',
    entry: 'bench/webhook-ingress.bench.js',
    args: quick ? ['--quick'] : [],
  },
  { name: 'projector', entry: 'bench/projector.bench.js', args: quick ? ['--quick'] : [] },
  {
    name: 'report-fetcher',
    entry: 'bench/report-fetcher.bench.js',
    args: quick ? ['--quick'] : [],
  },
  {
    name: 'kafka-encoding',
    entry: 'bench/kafka-encoding.bench.js',
    args: quick ? ['--quick'] : [],
  },
  { name: 'soak', entry: 'bench/soak.js', args: ['--quick'] },
];

interface Ran {
  readonly name: string;
  readonly seconds: number;
  readonly output: string;
  readonly file: string;
}

/** Runs one bench as its own process, echoing its output; resolves with where it wrote results. */
function runOne(bench: (typeof BENCHES)[number]): Promise<Ran> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(ROOT, 'dist', bench.entry), ...bench.args], {
      cwd: ROOT,
      env: process.env,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      process.stdout.write(chunk);
    });
    child.on('exit', (code) => {
      const file = /written to (\S+\.json)/.exec(output)?.[1];
      if (code !== 0 || !file) {
        reject(new Error(`${bench.name} failed (exit ${code})`));
        return;
      }
      resolve({
        name: bench.name,
        seconds: Math.round((Date.now() - started) / 1000),
        output,
        file,
      });
    });
  });
}

async function main() {
  // Started once for all, so no bench pays for (or measures) a broker start.
  // Read before anything runs: a run later today writes over today's summary.
  const previous = previousSummary(quick);
  const started = ensureInfra();
  const date = new Date().toISOString();
  const ran: Ran[] = [];
  try {
    for (const bench of BENCHES) {
      process.stdout.write(`\n=== ${bench.name} ${bench.args.join(' ')}\n`);
      ran.push(await runOne(bench));
    }
  } finally {
    stopInfra(started);
  }
  const about = machine();
  const results = Object.fromEntries(
    ran.map((r) => [r.name, JSON.parse(readFileSync(r.file, 'utf8')) as unknown]),
  );
  const base = join(ROOT, 'bench/results', `${date.slice(0, 10)}-all${quick ? '-quick' : ''}`);
  writeFileSync(
    `${base}.json`,
    `${JSON.stringify({ date, quick, machine: about, seconds: Object.fromEntries(ran.map((r) => [r.name, r.seconds])), results }, null, 2)}\n`,
  );
  const markdown = [
    `# Benchmarks, ${date.slice(0, 10)}${quick ? ' (quick)' : ''}`,
    '',
    `Machine: ${about.cpus} × ${about.cpu_model}, ${about.memory_gib} GiB, Node ${about.node}, ${about.platform}.`,
    `Run at ${date}; the full figures are in \`${base.slice(ROOT.length + 1)}.json\`.`,
    '',
    ...ran.flatMap((r) => [
      `## ${r.name} (${r.seconds} s)`,
      '',
      '```',
      r.output.replace(/\n?written to .*\n?$/, '').trim(),
      '```',
      '',
    ]),
  ].join('\n');
  const otherMachine =
    previous && JSON.stringify(previous.machine) !== JSON.stringify(about)
      ? `The previous run was on another machine (${JSON.stringify(previous.machine)}): changes say as much about the machines as about the code.\n\n`
      : '';
  const comparison = previous
    ? [
        `## Against the previous run (${previous.date})`,
        '',
        `${otherMachine}${changeTable(compare(previous.results, results))}`,
        '',
      ].join('\n')
    : '## Against the previous run\n\nNo earlier summary of this form in bench/results/.\n';
  writeFileSync(`${base}.md`, `${markdown}\n${comparison}`);
  process.stdout.write(`\n${comparison}\nwritten to ${base}.json and ${base}.md\n`);
}

/** The newest summary of this form (quick or full) in bench/results/, read before it is replaced. */
function previousSummary(
  quick: boolean,
): { date: string; machine: unknown; results: unknown } | undefined {
  const dir = join(ROOT, 'bench/results');
  if (!existsSync(dir)) return undefined;
  const suffix = quick ? '-all-quick.json' : '-all.json';
  const summaries = readdirSync(dir)
    .filter((f) => f.endsWith(suffix))
    .flatMap((file) => {
      try {
        const parsed = JSON.parse(readFileSync(join(dir, file), 'utf8')) as {
          date?: unknown;
          machine?: unknown;
          results?: unknown;
        };
        if (typeof parsed.date !== 'string' || parsed.results === undefined) return [];
        return [{ date: parsed.date, machine: parsed.machine, results: parsed.results }];
      } catch {
        return []; // a summary cut short is no baseline
      }
    })
    .sort((a, b) => a.date.localeCompare(b.date));
  return summaries.at(-1);
}

runBench(main);
