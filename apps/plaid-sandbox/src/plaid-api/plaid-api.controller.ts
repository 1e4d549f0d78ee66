import { LOGGER, type Logger } from '@cashflow/observability';
import { Controller, Inject, Post, Req, Res } from '@nestjs/common';
import type { Request, Response } from 'express';
import { SandboxService, type Caller } from '../sandbox.service';
import { PlaidHttpError, newRequestId, plaidErrorBody } from './plaid-errors';

/**
 * Plaid's paths, answered as Plaid answers them: 200 with the response, or the documented HTTP
 * status with a complete PlaidError. Bodies arrive raw (see main.ts) so malformed JSON gets
 * Plaid's INVALID_BODY rather than a framework error.
 */
@Controller()
export class PlaidApiController {
  constructor(
    private readonly sandbox: SandboxService,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  @Post('cashflow_report/refresh')
  refresh(@Req() req: Request, @Res() res: Response) {
    return this.handle(req, res, (caller, body) => this.sandbox.refresh(caller, body));
  }

  @Post('cashflow_report/get')
  get(@Req() req: Request, @Res() res: Response) {
    return this.handle(req, res, (caller, body) => this.sandbox.get(caller, body));
  }

  @Post('cashflow_report/transactions/get')
  transactionsGet(@Req() req: Request, @Res() res: Response) {
    return this.handle(req, res, (caller, body) => this.sandbox.transactionsGet(caller, body));
  }

  @Post('cashflow_report/insights/get')
  insightsGet(@Req() req: Request, @Res() res: Response) {
    return this.handle(req, res, (caller, body) => this.sandbox.insightsGet(caller, body));
  }

  @Post('webhook_verification_key/get')
  webhookVerificationKeyGet(@Req() req: Request, @Res() res: Response) {
    return this.handle(req, res, (caller, body) =>
      this.sandbox.webhookVerificationKeyGet(caller, body),
    );
  }

  private async handle(
    req: Request,
    res: Response,
    operation: (caller: Caller, body: unknown) => unknown,
  ): Promise<void> {
    const held = { destroy: () => req.socket.destroy() };
    this.sandbox.hanging.add(held);
    res.on('close', () => this.sandbox.hanging.delete(held));
    try {
      const body = parseJsonBody(req);
      const caller = this.sandbox.authenticate(body, req.headers);
      res.status(200).json(await operation(caller, body));
    } catch (error) {
      if (error instanceof PlaidHttpError) {
        res.status(error.status).json(error.body);
        return;
      }
      this.logger.error({ err: error, path: req.path }, 'sandbox failed to answer');
      res.status(500).json(plaidErrorBody('INTERNAL_SERVER_ERROR', newRequestId()));
    }
  }
}

/** Plaid takes JSON only; the body arrives as raw bytes. */
export function parseJsonBody(req: Request): unknown {
  const type = req.headers['content-type'] ?? '';
  if (!/^application\/json\b/i.test(type))
    throw new PlaidHttpError('INVALID_HEADERS', newRequestId());
  const raw: unknown = req.body;
  const text = Buffer.isBuffer(raw) ? raw.toString('utf8') : '';
  try {
    return JSON.parse(text || 'null') as unknown;
  } catch {
    throw new PlaidHttpError('INVALID_BODY', newRequestId());
  }
}
