/**
 * The baseline for bench/refresh-worker.bench.ts: NestJS's own Kafka transport with an ordinary
 * `@EventPattern` handler doing the worker's work (decode, look up the token, call Plaid, publish
 * the outcome), as that transport runs it: one message at a time per partition.
 */
import { TokenCipher, TokenVault } from '@cashflow/access-tokens';
import { LOCAL_SANDBOX_CREDENTIALS } from '@cashflow/config';
import { createEvent, decodeEvent, topicName } from '@cashflow/contracts';
import { EventPublisher, createKafka } from '@cashflow/kafka';
import { PinoNestLogger, createLogger } from '@cashflow/observability';
import { createDataSource } from '@cashflow/persistence';
import { PlaidClient } from '@cashflow/plaid-client';
import { Controller, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import {
  Ctx,
  EventPattern,
  KafkaContext,
  Transport,
  type MicroserviceOptions,
} from '@nestjs/microservices';
import { randomUUID } from 'node:crypto';

const env = (name: string) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is required`);
  return value;
};
const PREFIX = process.env.KAFKA_TOPIC_PREFIX ?? '';
const TOPIC = topicName('refreshRequested', PREFIX);
const logger = createLogger({ service: 'plain-handler', level: 'warn' });
const keys = new Map(
  env('TOKEN_ENCRYPTION_KEYS')
    .split(',')
    .map(
      (k) =>
        [k.slice(0, k.indexOf(':')), Buffer.from(k.slice(k.indexOf(':') + 1), 'base64')] as const,
    ),
);
const db = createDataSource({ url: env('DATABASE_URL'), applicationName: 'plain-handler' });
const vault = new TokenVault(db, new TokenCipher(keys, [...keys.keys()][0]!));
const plaid = new PlaidClient({
  baseUrl: env('PLAID_BASE_URL'),
  ...{ clientId: LOCAL_SANDBOX_CREDENTIALS.clientId, secret: LOCAL_SANDBOX_CREDENTIALS.secret },
});
const kafka = createKafka({
  brokers: env('KAFKA_BROKERS').split(','),
  clientId: 'plain-handler',
  topicPrefix: PREFIX,
  logger,
});
const publisher = new EventPublisher(kafka, PREFIX);

@Controller()
class PlainRefreshHandler {
  @EventPattern(TOPIC)
  async handle(@Ctx() context: KafkaContext): Promise<void> {
    // NestJS's Kafka parser has already turned the value into an object; decode it as sent.
    const message = context.getMessage();
    const value: unknown = message.value;
    const decoded = decodeEvent(
      { ...message, value: typeof value === 'string' ? value : JSON.stringify(value) },
      ['RefreshRequested'],
    );
    if (!decoded.ok || decoded.value.type !== 'RefreshRequested') {
      logger.warn(
        { error: decoded.ok ? 'unexpected type' : decoded.error.message },
        'skipped a message',
      );
      return;
    }
    const request = decoded.value;
    const token = await vault.reveal(request.data.item_id);
    if (!token) return;
    const result = await plaid.refreshCashflowReport(token, request.data.days_requested ?? 365);
    if (!result.ok) return;
    await publisher.publish(
      createEvent(
        'RefreshAccepted',
        {
          item_id: request.data.item_id,
          refresh_request_id: request.metadata.id,
          plaid_request_id: result.value.request_id,
          days_requested: request.data.days_requested ?? 365,
          attempts: 1,
          accepted_at: new Date().toISOString(),
        },
        {
          id: randomUUID(),
          source: 'urn:bench:plain-handler',
          time: new Date().toISOString(),
          correlationId: request.metadata.id,
        },
      ),
    );
  }
}

@Module({ controllers: [PlainRefreshHandler] })
class PlainModule {}

async function main() {
  await db.initialize();
  await publisher.connect();
  const app = await NestFactory.createMicroservice<MicroserviceOptions>(PlainModule, {
    logger: new PinoNestLogger(logger),
    transport: Transport.KAFKA,
    options: {
      client: { clientId: 'plain-handler', brokers: env('KAFKA_BROKERS').split(',') },
      consumer: { groupId: `${PREFIX}plain-handler` },
      subscribe: { fromBeginning: true },
    },
  });
  await app.listen();
  process.stdout.write('ready\n');
  process.once('SIGTERM', () => {
    void app.close().then(() => process.exit(0));
  });
}

void main();
