import { ConfigError } from '@cashflow/config';
import type { INestApplication, Type } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ExpressAdapter } from '@nestjs/platform-express';
import { createServer, type ServerOptions } from 'node:http';
import type { Logger } from 'pino';
import { createLogger } from './logger';
import { PinoNestLogger } from './nest-logger';
import { startTracing, type Tracing } from './tracing';

/** Exit status for invalid configuration (sysexits EX_CONFIG). */
export const EXIT_CONFIG = 78;

export interface Started {
  /** Stops the app; resolves when every connection is closed. */
  close(): Promise<void>;
}

/**
 * Runs an app's start-up and turns failures into a clear message and exit status: invalid
 * configuration prints the variables at fault and exits 78; anything else is logged and exits 1.
 * SIGINT and SIGTERM close the app once, then exit 0; one that arrives while the app is still
 * starting closes it as soon as it has started (a worker still joining its consumer group then
 * leaves it, rather than linger in it until the session time-out). A second signal ends the
 * process at once. Tracing starts first when the environment configures it (see `startTracing`)
 * and exports what it holds once the app has closed.
 */
export function startApp(service: string, start: () => Promise<Started>): void {
  const fallbackLogger: Logger = createLogger({ service, level: 'info' });
  let started: Started | undefined;
  let tracing: Tracing | undefined;
  let stopping = false;
  const close = (app: Started) =>
    app
      .close()
      .then(() => tracing?.shutdown())
      .then(
        () => process.exit(0),
        (error: unknown) => {
          fallbackLogger.error({ err: error }, `${service} did not stop cleanly`);
          process.exit(1);
        },
      );
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    fallbackLogger.info({ signal }, `${service} stopping`);
    if (started) void close(started);
  };
  process.once('SIGINT', () => stop('SIGINT'));
  process.once('SIGTERM', () => stop('SIGTERM'));
  Promise.resolve()
    .then(() => {
      tracing = startTracing(service, process.env, fallbackLogger);
      return start();
    })
    .then(
      (app) => {
        started = app;
        if (stopping) void close(app);
      },
      (error: unknown) => {
        if (error instanceof ConfigError) {
          process.stderr.write(`${error.message}\n`);
          process.exit(EXIT_CONFIG);
        }
        fallbackLogger.fatal({ err: error }, `${service} failed to start`);
        process.exit(1);
      },
    );
}

export interface HttpAppOptions {
  readonly module: unknown;
  readonly logger: Logger;
  readonly port: number;
  readonly host: string;
  /** NestJS's JSON body parser; off for apps that read raw bytes. Default on. */
  readonly bodyParser?: boolean;
  /** Set-up before listening (filters, body parsers, connected microservices). */
  readonly configure?: (app: INestApplication) => void;
  /**
   * Options for the node:http server, e.g. `requestTimeout` and `connectionsCheckingInterval`
   * (which node only reads when the server is created).
   */
  readonly httpServerOptions?: ServerOptions;
}

/** NestJS's Express adapter, with a node:http server created with our options. */
class ExpressAdapterWithServerOptions extends ExpressAdapter {
  constructor(private readonly serverOptions: ServerOptions) {
    super();
  }

  override initHttpServer(): void {
    this.httpServer = createServer(this.serverOptions, this.getInstance());
  }
}

/**
 * Creates a NestJS HTTP app that logs through pino and listens on host:port. Start-up errors
 * (an unreachable broker, a port in use) reject instead of aborting, so startApp reports them.
 */
export async function listenHttpApp(options: HttpAppOptions): Promise<INestApplication> {
  const adapter = options.httpServerOptions
    ? new ExpressAdapterWithServerOptions(options.httpServerOptions)
    : new ExpressAdapter();
  const app = await NestFactory.create(options.module as Type, adapter, {
    logger: new PinoNestLogger(options.logger),
    abortOnError: false,
    bodyParser: options.bodyParser ?? true,
  });
  options.configure?.(app);
  await app.listen(options.port, options.host);
  return app;
}
