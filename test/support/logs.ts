import { createLogger, type Logger } from '@cashflow/observability';
import { Writable } from 'node:stream';

/**
 * A logger whose lines (JSON, one per entry) are pushed onto `lines` instead of stdout, for
 * tests that read what was logged. `echo`, when given, sees each line too.
 */
export function loggerInto(
  lines: string[],
  service: string,
  level: string,
  echo?: (line: string) => void,
): Logger {
  return createLogger({
    service,
    level,
    destination: new Writable({
      write(chunk: Buffer, _encoding, done) {
        const line = chunk.toString();
        lines.push(line);
        echo?.(line);
        done();
      },
    }),
  });
}
