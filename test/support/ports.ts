import { createServer } from 'node:net';

/**
 * Ports this process has handed out. The kernel often gives a port just closed to the next
 * bind(0) (over 500 repeats in 3,000 picks here), so two servers of one test could be told the
 * same port, and a request meant for one would reach the other.
 */
const handedOut = new Set<number>();

/** A TCP port on 127.0.0.1 that was free a moment ago and that no earlier call returned. */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = await unusedPort();
    if (handedOut.has(port)) continue;
    handedOut.add(port);
    return port;
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
