import { Catch, NotFoundException, type ArgumentsHost, type ExceptionFilter } from '@nestjs/common';
import type { Response } from 'express';
import { newRequestId, plaidErrorBody } from './plaid-errors';

/** Unknown paths get Plaid's NOT_FOUND error body instead of the framework's. */
@Catch(NotFoundException)
export class PlaidNotFoundFilter implements ExceptionFilter {
  catch(_exception: NotFoundException, host: ArgumentsHost): void {
    host
      .switchToHttp()
      .getResponse<Response>()
      .status(404)
      .json(plaidErrorBody('NOT_FOUND', newRequestId()));
  }
}
