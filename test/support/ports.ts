import { mkdirSync, openSync, closeSync, statSync, utimesSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Ports this process has handed out. The kernel often gives a port just closed to the next
 * bind(0) (over 500 repeats in 3,000 picks here), so two servers of one test could be told the
 * same port, and a request meant for one would reach the other.
 */
const handedOut = new Set<number>();

/**
 * Ports handed out by any test process (jest runs two at once): a file per port, created
 * exclusively. One older than RESERVED_FOR_MS is free to take again.
 */
const RESERVATIONS = join(tmpdir(), 'cashflow-test-ports');
const RESERVED_FOR_MS = 30 * 60_000;

/** A TCP port on 127.0.0.1 that was free a moment ago and that no earlier call returned. */
export async function freePort(): Promise<number> {
  mkdirSync(RESERVATIONS, { recursive: true });
  for (;;) {
    const port = await unusedPort();
    if (handedOut.has(port) || !reserve(port)) continue;
    handedOut.add(port);
    return port;
  }
}

/** True when no other test process handed `port` out lately; it is then this one's. */
function reserve(port: number): boolean {
  const file = join(RESERVATIONS, String(port));
  try {
    closeSync(openSync(file, 'wx'));
    return true;
  } catch {
    try {
      if (Date.now() - statSync(file).mtimeMs < RESERVED_FOR_MS) return false;
      const now = new Date();
      utimesSync(file, now, now);
      return true;
    } catch {
      return false;
    }
  }
}

function unusedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address
          ? resolve(address.port)
          : reject(new Error('no port')),
      );
    });
  });
}
