import type { RefreshRequested } from '@cashflow/contracts';
import { Controller } from '@nestjs/common';
import { EventPattern, Payload } from '@nestjs/microservices';
import { RefreshService } from './refresh.service';

/** Where RefreshRequested enters the worker (decoded and validated by the Kafka transport). */
@Controller()
export class RefreshRequestedHandler {
  constructor(private readonly refresh: RefreshService) {}

  @EventPattern('RefreshRequested')
  handle(@Payload() request: RefreshRequested): Promise<void> {
    return this.refresh.handle(request);
  }
}
