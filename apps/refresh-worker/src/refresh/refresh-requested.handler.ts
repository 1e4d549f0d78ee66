import type { RefreshRequested } from '@cashflow/contracts';
import { KafkaEventContext, KafkaHandlerErrors } from '@cashflow/kafka';
import { Controller, UseFilters } from '@nestjs/common';
import { Ctx, EventPattern, Payload } from '@nestjs/microservices';
import { RefreshService } from './refresh.service';

/** Where RefreshRequested enters the worker (decoded and validated by the Kafka transport). */
@Controller()
@UseFilters(KafkaHandlerErrors)
export class RefreshRequestedHandler {
  constructor(private readonly refresh: RefreshService) {}

  @EventPattern('RefreshRequested')
  handle(@Payload() request: RefreshRequested, @Ctx() context: KafkaEventContext): Promise<void> {
    const { timestamp, signal } = context.message;
    return this.refresh.handle(request, { reachedKafkaAt: Number(timestamp), signal });
  }
}
