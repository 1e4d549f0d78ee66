import type { LoggerService } from '@nestjs/common';
import type { Logger } from 'pino';

/**
 * Routes NestJS's own log calls into pino. Hand-written because nestjs-pino's current major needs
 * Node 22 and its value is per-request context, which our consumers do not have; this is the
 * whole adapter.
 */
export class PinoNestLogger implements LoggerService {
  constructor(private readonly logger: Logger) {}

  log(message: unknown, context?: string) {
    this.write('info', message, context);
  }
  error(message: unknown, traceOrContext?: string, context?: string) {
    const ctx = context ?? traceOrContext;
    if (message instanceof Error)
      this.logger.error({ err: message, context: ctx }, message.message);
    else this.write('error', message, ctx);
  }
  warn(message: unknown, context?: string) {
    this.write('warn', message, context);
  }
  debug(message: unknown, context?: string) {
    this.write('debug', message, context);
  }
  verbose(message: unknown, context?: string) {
    this.write('trace', message, context);
  }
  fatal(message: unknown, context?: string) {
    this.write('fatal', message, context);
  }

  private write(
    level: 'info' | 'error' | 'warn' | 'debug' | 'trace' | 'fatal',
    message: unknown,
    context?: string,
  ) {
    if (typeof message === 'object' && message !== null)
      this.logger[level]({ context, ...message });
    else this.logger[level]({ context }, String(message));
  }
}
