import type { INestApplication } from '@nestjs/common';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { PlaidNotFoundFilter } from './plaid-api/not-found.filter';

/** Bodies arrive raw (JSON is parsed by the handlers, so bad JSON gets Plaid's INVALID_BODY). */
export function configureSandboxApp(app: INestApplication): void {
  (app as NestExpressApplication).useBodyParser('raw', { type: () => true, limit: '1mb' });
  app.useGlobalFilters(new PlaidNotFoundFilter());
}
