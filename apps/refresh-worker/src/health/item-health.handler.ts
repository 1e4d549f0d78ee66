import type { PlaidWebhookReceived, RefreshAccepted, RefreshFailed } from '@cashflow/contracts';
import { KafkaHandlerErrors } from '@cashflow/kafka';
import { Controller, UseFilters } from '@nestjs/common';
import { EventPattern, Payload } from '@nestjs/microservices';
import { outcomeFact, webhookFact } from './health-events';
import { ItemHealthService } from './item-health.service';

/**
 * Where Item health learns its facts (decoded and validated by the Kafka transport): Plaid's
 * verified Item webhooks, and the worker's own refresh outcomes (what Plaid answered).
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
}
