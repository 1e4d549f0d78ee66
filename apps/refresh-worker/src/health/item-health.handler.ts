import type {
  PlaidWebhookReceived,
  RefreshAccepted,
  RefreshFailed,
  ReportFailed,
  ReportOverdue,
  ReportReady,
} from '@cashflow/contracts';
import { KafkaHandlerErrors } from '@cashflow/kafka';
import { Controller, UseFilters } from '@nestjs/common';
import { EventPattern, Payload } from '@nestjs/microservices';
import { outcomeFact, reportFact, webhookFact } from './health-events';
import { ItemHealthService } from './item-health.service';

/**
 * Where Item health learns its facts (decoded and validated by the Kafka transport): Plaid's
 * verified Item webhooks, the worker's own refresh outcomes (what Plaid answered), and the
 * reports Plaid failed. Every event type of those topics has a handler here: a record of a type
 * no handler expects would be dead-lettered.
 */
@Controller()
@UseFilters(KafkaHandlerErrors)
export class ItemHealthHandler {
  constructor(private readonly health: ItemHealthService) {}

  @EventPattern('PlaidWebhookReceived')
  webhook(@Payload() event: PlaidWebhookReceived): Promise<void> {
    return this.health.record(webhookFact(event));
  }

  @EventPattern('RefreshAccepted')
  accepted(@Payload() event: RefreshAccepted): Promise<void> {
    return this.health.record(outcomeFact(event));
  }

  @EventPattern('RefreshFailed')
  failed(@Payload() event: RefreshFailed): Promise<void> {
    return this.health.record(outcomeFact(event));
  }

  @EventPattern('ReportFailed')
  reportFailed(@Payload() event: ReportFailed): Promise<void> {
    return this.health.record(reportFact(event));
  }

  /** A report that came says nothing about the login Plaid had not said by accepting it. */
  @EventPattern('ReportReady')
  reportReady(@Payload() _event: ReportReady): Promise<void> {
    return Promise.resolve();
  }

  @EventPattern('ReportOverdue')
  reportOverdue(@Payload() _event: ReportOverdue): Promise<void> {
    return Promise.resolve();
  }
}
