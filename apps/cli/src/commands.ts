import {
  ConfigError,
  commonVariables,
  databaseVariables,
  kafkaVariables,
  loadConfig,
  topicAdminVariables,
} from '@cashflow/config';
import { buildAsyncApiDocument } from '@cashflow/contracts';
import { createKafka, ensureTopics } from '@cashflow/kafka';
import { EXIT_CONFIG, createLogger, scrubSecrets } from '@cashflow/observability';
import { runMigrations } from '@cashflow/persistence';
import { Command } from 'commander';
import { stringify } from 'yaml';
import { z } from 'zod';
import { addItemsCommands } from './items-command';

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
      const logger = createLogger({ service: SERVICE, level: 'warn' });
      const kafka = createKafka({
        brokers: env.KAFKA_BROKERS,
        clientId: env.KAFKA_CLIENT_ID ?? 'cashflow-cli',
        topicPrefix: env.KAFKA_TOPIC_PREFIX,
        logger,
      });
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

  program
    .command('asyncapi')
    .description('Print the AsyncAPI 3 document of every topic, generated from the code.')
    .action(() => {
      process.stdout.write(stringify(buildAsyncApiDocument(), { lineWidth: 0 }));
    });

  addItemsCommands(program);
  return program;
}

/** Runs the CLI; exit 0 when done, 78 for bad configuration, 1 with a one-line reason otherwise. */
export async function runCli(argv: readonly string[]): Promise<number> {
  try {
    await buildProgram().parseAsync([...argv], { from: 'user' });
    return 0;
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      return EXIT_CONFIG;
    }
    process.stderr.write(`error: ${scrubSecrets((error as Error).message ?? String(error))}\n`);
    return 1;
  }
}
