import {
  ConfigError,
  commonVariables,
  databaseVariables,
  kafkaVariables,
  loadConfig,
  topicAdminVariables,
} from '@cashflow/config';
import { buildAsyncApiDocument } from '@cashflow/contracts';
import { ensureTopics } from '@cashflow/kafka';
import { EXIT_CONFIG, scrubSecrets } from '@cashflow/observability';
import { createDataSource, runMigrations } from '@cashflow/persistence';
import { buildOpenApiDocument, rebuildProjection } from '@cashflow/projection';
import { Command } from 'commander';
import { stringify } from 'yaml';
import { z } from 'zod';
import { addCheckCommand } from './check/check-command';
import { consumerLag } from './consumer-lag';
import { cliLogger, kafkaFrom } from './clients';
import { addEventsCommands } from './events-commands';
import { addItemsCommands } from './items-command';
import { print, textTable } from './output';
import { addRefreshCommands, outcome } from './refresh-commands';
import { addReportCommands } from './report-commands';

const SERVICE = 'cli';

/** The ops and upstream-team command line. Each command reads only the variables it needs. */
export function buildProgram(): Command {
  const program = new Command('cashflow-refresh')
    .description('Operate cashflow-refresh: database migrations, Kafka topics, event contracts.')
    .showHelpAfterError();

  program
    .command('migrate')
    .description('Apply pending database migrations (DATABASE_URL).')
    .action(async () => {
      const env = loadConfig(SERVICE, z.object({ ...databaseVariables }));
      const report = await runMigrations({
        url: env.DATABASE_URL,
        applicationName: 'cashflow-cli',
      });
      process.stdout.write(
        report.applied.length
          ? `Applied ${report.applied.length} migration(s): ${report.applied.join(', ')}\n`
          : 'Database is up to date.\n',
      );
    });

  const topics = program.command('topics').description('Kafka topics of the service.');
  topics
    .command('create')
    .description(
      'Create every topic with KAFKA_PARTITIONS partitions, KAFKA_REPLICATION_FACTOR replicas and no time-based deletion. Existing topics are left alone.',
    )
    .action(async () => {
      const env = loadConfig(
        SERVICE,
        z.object({ ...commonVariables, ...kafkaVariables, ...topicAdminVariables }),
      );
      const logger = cliLogger();
      const kafka = kafkaFrom(env, logger);
      const report = await ensureTopics(kafka, {
        prefix: env.KAFKA_TOPIC_PREFIX,
        partitions: env.KAFKA_PARTITIONS,
        replicationFactor: env.KAFKA_REPLICATION_FACTOR,
      });
      for (const name of report.created) process.stdout.write(`created  ${name}\n`);
      for (const name of report.existing) process.stdout.write(`exists   ${name}\n`);
      for (const m of report.mismatched) {
        process.stderr.write(
          `warning: ${m.topic} has ${m.partitions} partitions, KAFKA_PARTITIONS says ${m.expected}; left unchanged\n`,
        );
      }
    });

  topics
    .command('lag')
    .description(
      "Records each of the service's consumer groups has not yet committed, per topic and partition (KAFKA_*). An app commits below what it still has in hand (the worker below its oldest unanswered request), so lag counts records being handled as well as unread ones.",
    )
    .option('--json', 'one JSON line per partition')
    .action(async (options: { json?: boolean }) => {
      const env = loadConfig(SERVICE, z.object({ ...commonVariables, ...kafkaVariables }));
      const admin = kafkaFrom(env, cliLogger()).admin();
      await admin.connect();
      try {
        const rows = await consumerLag(admin, env.KAFKA_TOPIC_PREFIX);
        if (options.json) {
          for (const row of rows) print(true, row, () => '');
          return;
        }
        if (rows.length === 0) {
          process.stdout.write('no consumer group of the service has committed an offset yet\n');
          return;
        }
        const totals = new Map<string, number>();
        for (const row of rows) totals.set(row.group, (totals.get(row.group) ?? 0) + row.lag);
        process.stdout.write(
          `${textTable(
            rows.map((r) => ({ ...r })),
            ['group', 'topic', 'partition', 'committed', 'end', 'lag'],
          )}\n\n${[...totals].map(([group, lag]) => `${group}: ${lag} behind`).join('\n')}\n`,
        );
      } finally {
        await admin.disconnect();
      }
    });

  program
    .command('asyncapi')
    .description('Print the AsyncAPI 3 document of every topic, generated from the code.')
    .action(() => {
      process.stdout.write(stringify(buildAsyncApiDocument(), { lineWidth: 0 }));
    });

  addProjectionCommands(program);
  addItemsCommands(program);
  addRefreshCommands(program);
  addReportCommands(program);
  addEventsCommands(program);
  addCheckCommand(program);
  return program;
}

/** `projection rebuild` and `projection openapi`. */
function addProjectionCommands(program: Command): void {
  const projection = program
    .command('projection')
    .description('The PostgreSQL projection of refresh state.');
  projection
    .command('rebuild')
    .description(
      'Replay every event topic from the beginning into fresh tables, then swap them in (DATABASE_URL, KAFKA_*). Safe while the projector runs.',
    )
    .action(async () => {
      const env = loadConfig(
        SERVICE,
        z.object({ ...commonVariables, ...kafkaVariables, ...databaseVariables }),
      );
      const logger = cliLogger();
      const kafka = kafkaFrom(env, logger);
      const db = await createDataSource({
        url: env.DATABASE_URL,
        applicationName: 'cashflow-cli',
        poolSize: 4,
      }).initialize();
      try {
        let shown = -1;
        const report = await rebuildProjection({
          db,
          kafka,
          topicPrefix: env.KAFKA_TOPIC_PREFIX,
          logger,
          onProgress: (applied, total) => {
            const pct = total === 0n ? 100 : Number((applied * 100n) / total);
            if (pct >= shown + 10 || (pct === 100 && shown !== 100)) {
              shown = pct;
              process.stderr.write(`replayed ${applied} of ${total} events (${pct}%)\n`);
            }
          },
        });
        process.stdout.write(
          `Rebuilt from ${report.events} events in ${report.seconds.toFixed(1)} s: ${report.items} Items, ${report.requests} refresh requests.\n`,
        );
      } finally {
        await db.destroy();
      }
    });
  projection
    .command('openapi')
    .description("Print the projector read API's OpenAPI document, generated from the code.")
    .action(() => {
      process.stdout.write(stringify(buildOpenApiDocument(), { lineWidth: 0 }));
    });
}

/** Runs the CLI; exit 0 when done, 78 for bad configuration, 1 with a one-line reason otherwise. */
export async function runCli(argv: readonly string[]): Promise<number> {
  try {
    await buildProgram().parseAsync([...argv], { from: 'user' });
    return outcome.exitCode;
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      return EXIT_CONFIG;
    }
    process.stderr.write(`error: ${scrubSecrets((error as Error).message ?? String(error))}\n`);
    return 1;
  }
}
