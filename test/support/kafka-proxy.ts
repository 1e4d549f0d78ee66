import { createConnection, createServer, type Server, type Socket } from 'node:net';

/** Kafka API keys the proxy looks at. */
const PRODUCE = 0;
const METADATA = 3;
/** Metadata versions from here on are "flexible" (compact strings, tagged fields). */
const FIRST_FLEXIBLE_METADATA_VERSION = 9;

/**
 * A loopback TCP proxy in front of one Kafka broker that can lose the broker's replies to produce
 * requests: the request reaches the broker (which writes the records) but the producer never
 * hears back, as when a reply is lost on the network. Everything else passes through.
 *
 * Kafka's wire protocol is a stream of frames, each a 4-byte big-endian size then the payload.
 * A request payload starts with api_key int16, api_version int16, correlation_id int32; a
 * response payload starts with the correlation_id. The proxy remembers each request's api key by
 * correlation id to know what a response answers.
 *
 * The broker advertises its own address in metadata responses, and a client connects to the
 * advertised address after bootstrapping; so the proxy rewrites the port of every broker in a
 * metadata response to its own (the host stays 127.0.0.1, and a port is a fixed-width int32, so
 * the frame keeps its size). kafkajs asks for Metadata v6 at most; flexible versions (v9+) are
 * refused loudly rather than passed through unrewritten.
 */
export async function startKafkaProxy(upstream: string) {
  const [host, portText] = upstream.split(':');
  const upstreamPort = Number(portText);
  const sockets = new Set<Socket>();
  const state = { swallowProduceReplies: false, swallowed: 0, errors: [] as Error[] };
  let listenPort = 0;

  const server: Server = createServer((client) => {
    const broker = createConnection({ host, port: upstreamPort });
    sockets.add(client);
    sockets.add(broker);
    const apiOf = new Map<number, { key: number; version: number }>();
    const close = () => {
      client.destroy();
      broker.destroy();
      sockets.delete(client);
      sockets.delete(broker);
    };
    client.on('error', close);
    broker.on('error', close);
    client.on('close', close);
    broker.on('close', close);

    client.on(
      'data',
      frames((frame) => {
        apiOf.set(frame.readInt32BE(8), {
          key: frame.readInt16BE(4),
          version: frame.readInt16BE(6),
        });
        broker.write(frame);
      }),
    );
    broker.on(
      'data',
      frames((frame) => {
        const correlationId = frame.readInt32BE(4);
        const api = apiOf.get(correlationId);
        apiOf.delete(correlationId);
        if (api?.key === PRODUCE && state.swallowProduceReplies) {
          state.swallowed += 1;
          return;
        }
        if (api?.key === METADATA) {
          try {
            advertiseProxy(frame, api.version, upstreamPort, listenPort);
          } catch (error) {
            state.errors.push(error as Error);
            close();
            return;
          }
        }
        client.write(frame);
      }),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  listenPort = (server.address() as { port: number }).port;

  return {
    brokers: [`127.0.0.1:${listenPort}`],
    /** While true, replies to produce requests are dropped (the requests still reach Kafka). */
    set swallowProduceReplies(on: boolean) {
      state.swallowProduceReplies = on;
    },
    /** Produce replies dropped so far. */
    get swallowed(): number {
      return state.swallowed;
    },
    /** Responses the proxy could not rewrite (their connections were closed). */
    get errors(): readonly Error[] {
      return state.errors;
    },
    async close(): Promise<void> {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
export type KafkaProxy = Awaited<ReturnType<typeof startKafkaProxy>>;

/** Splits a byte stream into whole size-prefixed frames (size included in each frame). */
function frames(onFrame: (frame: Buffer) => void): (chunk: Buffer) => void {
  let pending: Buffer = Buffer.alloc(0);
  return (chunk) => {
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    while (pending.length >= 4) {
      const end = 4 + pending.readInt32BE(0);
      if (pending.length < end) break;
      onFrame(pending.subarray(0, end));
      pending = pending.subarray(end);
    }
  };
}

/**
 * Rewrites, in place, the port of every broker listed in a Metadata response (versions 0-8)
 * from `from` to `to`. Layout after size and correlation id: [throttle_time_ms int32 (v3+)],
 * brokers: int32 count, then per broker node_id int32, host string (int16 length), port int32,
 * [rack nullable string (v1+)].
 */
function advertiseProxy(frame: Buffer, version: number, from: number, to: number): void {
  if (version >= FIRST_FLEXIBLE_METADATA_VERSION) {
    throw new Error(`Metadata v${version} is flexible; the proxy rewrites v0-v8 only`);
  }
  let at = 8;
  if (version >= 3) at += 4;
  const count = frame.readInt32BE(at);
  at += 4;
  for (let i = 0; i < count; i++) {
    at += 4; // node_id
    at += 2 + frame.readInt16BE(at); // host
    if (frame.readInt32BE(at) === from) frame.writeInt32BE(to, at);
    at += 4;
    if (version >= 1) {
      const rack = frame.readInt16BE(at);
      at += 2 + Math.max(0, rack);
    }
  }
}
