import {
  CE_HEADERS,
  DECODE_ERROR_CODES,
  EVENTS,
  EVENT_TYPES,
  decodeEvent,
  encodeEvent,
  type DecodeErrorCode,
  type EventType,
  type KafkaRecord,
} from '@cashflow/contracts';
import fc from 'fast-check';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import { createHash } from 'node:crypto';
import { WebhookVerifier } from '../../apps/webhook-ingress/src/verification/webhook-verifier';
import { VerificationKeys } from '../../apps/webhook-ingress/src/verification/verification-keys';
import { decideWebhook } from '../../apps/webhook-ingress/src/webhooks/webhook-events';
import { sampleEvent } from '../support/sample-events';

/**
 * Property-based fuzzing of everything that parses input from outside: the event decoder (any
 * Kafka record on any topic) and the webhook ingress's verifier and body parser. Whatever comes
 * in, they return a typed answer and never throw or touch Object.prototype.
 *
 * `npm test` runs FUZZ_RUNS (default 1,000) cases per property; `npm run fuzz` runs 100,000.
 */
const RUNS = Number(process.env.FUZZ_RUNS ?? 1000);
const settings = { numRuns: RUNS, endOnFailure: true };
/** 100,000 signature checks take about a minute on two cores. */
const FUZZ_TIMEOUT_MS = 10 * 60_000;

/** What decoding alone can answer (the other codes are given by consumers to records that decode). */
const DECODE_ERRORS: readonly DecodeErrorCode[] = DECODE_ERROR_CODES.filter(
  (code) => code !== 'HANDLER_FAILED' && code !== 'REQUEST_ID_CONFLICT',
);

const HOSTILE_KEYS = ['__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty'];

/** JSON text that may carry prototype-pollution keys, deep nesting and long strings. */
const hostileJson: fc.Arbitrary<string> = fc.oneof(
  fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v)),
  fc
    .tuple(fc.constantFrom(...HOSTILE_KEYS), fc.jsonValue({ maxDepth: 2 }))
    .map(([key, v]) => `{"${key}": ${JSON.stringify(v)}, "item_id": "x"}`),
  fc.integer({ min: 1, max: 5000 }).map((depth) => '['.repeat(depth) + ']'.repeat(depth)),
  fc.integer({ min: 1, max: 5000 }).map((depth) => '{"a":'.repeat(depth) + '1' + '}'.repeat(depth)),
  fc.string({ maxLength: 100 }).map((s) => `{"item_id": ${JSON.stringify(s.repeat(50))}}`),
);

/** A valid event's data with one field replaced, removed, or set to something hostile. */
function mutatedData(type: EventType): fc.Arbitrary<string> {
  const data = sampleEvent(type, 'item-fuzz').data as Record<string, unknown>;
  const fields = Object.keys(data);
  return fc
    .tuple(
      fc.constantFrom(...fields, ...HOSTILE_KEYS),
      fc.oneof(
        fc.constant(undefined),
        fc.jsonValue({ maxDepth: 3 }),
        fc.string({ maxLength: 300 }),
        fc.double(),
        fc.constant({ __proto__: { polluted: true } }),
      ),
    )
    .map(([field, value]) => {
      const copy: Record<string, unknown> = JSON.parse(JSON.stringify(data)) as Record<
        string,
        unknown
      >;
      if (value === undefined) delete copy[field];
      else Object.defineProperty(copy, field, { value, enumerable: true });
      return JSON.stringify(copy);
    });
}

const bytesOrText = fc.oneof(
  fc.uint8Array({ maxLength: 512 }).map((b) => Buffer.from(b)),
  fc.string({ maxLength: 200 }).map((s) => Buffer.from(s)),
);

/** Headers: the real CloudEvents names with valid, random or missing values, plus junk. */
/** Mostly `good`, sometimes anything `bad` gives: records must get past the first checks. */
const mostly = <T>(good: fc.Arbitrary<T>, bad: fc.Arbitrary<T>) =>
  fc.oneof({ arbitrary: good, weight: 6 }, { arbitrary: bad, weight: 1 });

const headers = fc
  .record({
    type: fc.constantFrom(...EVENT_TYPES),
    id: mostly(fc.uuid(), fc.string({ maxLength: 300 })),
    specversion: mostly(fc.constant('1.0'), fc.constantFrom('0.3', '')),
    time: mostly(
      fc.date({ noInvalidDate: true, min: new Date(0) }).map((d) => d.toISOString()),
      fc.string(),
    ),
    subject: mostly(fc.constant('item-fuzz'), fc.constantFrom('', '__proto__', 'other')),
    contentType: mostly(
      fc.constantFrom('application/json', 'application/json; charset=utf-8'),
      fc.constant('text/plain'),
    ),
    drop: mostly(
      fc.constant<string[]>([]),
      fc.subarray(['ce_id', 'ce_time', 'ce_source', 'content-type']),
    ),
    junk: fc.dictionary(fc.constantFrom(...HOSTILE_KEYS, 'x-junk'), fc.string({ maxLength: 50 })),
  })
  .map((h) => {
    const out: Record<string, string | Buffer> = {
      ...h.junk,
      [CE_HEADERS.specversion]: h.specversion,
      [CE_HEADERS.id]: h.id,
      [CE_HEADERS.source]: 'urn:fuzz',
      [CE_HEADERS.type]: EVENTS[h.type].cloudEventType,
      [CE_HEADERS.time]: h.time,
      [CE_HEADERS.subject]: h.subject,
      [CE_HEADERS.contentType]: h.contentType,
    };
    for (const name of h.drop) delete out[name];
    return { type: h.type, headers: out };
  });

const record: fc.Arbitrary<KafkaRecord> = headers.chain(({ type, headers: h }) =>
  fc.record({
    key: mostly<string | Buffer | null>(
      fc.constant('item-fuzz'),
      fc.oneof(fc.constant(null), bytesOrText),
    ),
    value: fc.oneof(
      { arbitrary: mutatedData(type).map((s) => Buffer.from(s)), weight: 4 },
      { arbitrary: hostileJson.map((s) => Buffer.from(s)), weight: 2 },
      { arbitrary: bytesOrText, weight: 1 },
      { arbitrary: fc.constant(null), weight: 1 },
    ),
    headers: fc.constant(h),
  }),
);

function expectPrototypeIntact(): void {
  expect((Object.prototype as Record<string, unknown>).polluted).toBeUndefined();
  expect(({} as Record<string, unknown>).polluted).toBeUndefined();
}

describe('hostile input', () => {
  afterEach(expectPrototypeIntact);

  it(`decodeEvent: any record gives a typed failure naming a field, or a valid event (${RUNS} runs)`, () => {
    const seen = new Set<string>();
    fc.assert(
      fc.property(
        record,
        mostly(fc.constant(undefined), fc.subarray([...EVENT_TYPES])),
        (r, expected) => {
          const result = decodeEvent(r, expected);
          seen.add(result.ok ? 'ok' : result.error.code);
          if (result.ok) {
            // Whatever decodes is a valid event: it encodes again, same key.
            expect(encodeEvent(result.value).key).toBe(r.key?.toString());
          } else {
            expect(DECODE_ERRORS).toContain(result.error.code);
            expect(typeof result.error.field).toBe('string');
            expect(result.error.message.length).toBeGreaterThan(0);
            expect(result.error.message.length).toBeLessThan(2000);
          }
        },
      ),
      settings,
    );
    // The generators reach the decoder's deepest paths, not only its first checks.
    expect([...seen]).toEqual(expect.arrayContaining(['ok', 'SCHEMA_VIOLATION', 'INVALID_JSON']));
  });

  it('decodeEvent: a value over 1 MB is refused before parsing', () => {
    const valid = encodeEvent(sampleEvent('RefreshRequested', 'item-big'));
    const huge = Buffer.alloc(2 * 1024 * 1024, 'a');
    const result = decodeEvent({ key: valid.key, value: huge, headers: valid.headers });
    expect(result.ok ? 'ok' : result.error.code).toBe('TOO_LARGE');
  });

  it(`decideWebhook: any verified body is published, recorded or refused, never thrown (${RUNS} runs)`, () => {
    const delivery = { deliveryId: 'a'.repeat(64), receivedAt: new Date() };
    const body = fc.oneof(
      bytesOrText,
      hostileJson.map((s) => Buffer.from(s)),
      fc
        .record({
          webhook_type: fc.oneof(fc.constant('CASHFLOW_REPORT'), fc.jsonValue({ maxDepth: 1 })),
          webhook_code: fc.oneof(
            fc.constantFrom('CASHFLOW_REPORT_READY', 'SOMETHING_ELSE', ''),
            fc.jsonValue({ maxDepth: 1 }),
          ),
          item_id: fc.oneof(fc.string({ maxLength: 300 }), fc.jsonValue({ maxDepth: 1 })),
          error: fc.oneof(fc.constant(null), fc.jsonValue({ maxDepth: 2 })),
          environment: fc.constantFrom('sandbox', 'production', 42),
          extra: fc.dictionary(fc.constantFrom(...HOSTILE_KEYS), fc.jsonValue({ maxDepth: 2 })),
        })
        .map(({ extra, ...rest }) => Buffer.from(JSON.stringify({ ...extra, ...rest }))),
    );
    const seen = new Set<string>();
    fc.assert(
      fc.property(body, (raw) => {
        const decision = decideWebhook(raw, delivery);
        seen.add(decision.kind);
        expect(['publish', 'record', 'invalid']).toContain(decision.kind);
        if (decision.kind === 'publish') {
          // What it publishes is a valid event, keyed by the Item.
          const encoded = encodeEvent(decision.event);
          expect(encoded.key).toBe(decision.event.data.item_id);
        } else {
          expect(decision.message.length).toBeGreaterThan(0);
        }
      }),
      settings,
    );
    expect([...seen].sort()).toEqual(['invalid', 'publish', 'record']);
  });

  describe('WebhookVerifier', () => {
    let verifier: WebhookVerifier;
    let sign: (
      body: Buffer,
      header: Record<string, unknown>,
      claims: Record<string, unknown>,
    ) => Promise<string>;

    beforeAll(async () => {
      const { publicKey, privateKey } = await generateKeyPair('ES256', { extractable: true });
      const jwk = { ...(await exportJWK(publicKey)), kid: 'kid-1', alg: 'ES256' };
      const keys = new VerificationKeys(
        {
          fetch: (kid) =>
            Promise.resolve(
              kid === 'kid-1'
                ? { kind: 'found', jwk: jwk as never }
                : ({ kind: 'not_found' } as const),
            ),
        },
        { fetchesPerMinute: 1_000_000, cacheTtlMs: 3_600_000 },
      );
      verifier = new WebhookVerifier(keys, { clockSkewMs: 30_000 });
      sign = (body, header, claims) =>
        new SignJWT({
          request_body_sha256: createHash('sha256').update(body).digest('hex'),
          iat: Math.floor(Date.now() / 1000),
          ...claims,
        })
          .setProtectedHeader({ alg: 'ES256', kid: 'kid-1', ...header })
          .sign(privateKey);
    });

    const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');

    it(
      `any Plaid-Verification header is verified or refused with a reason (${RUNS} runs)`,
      async () => {
        const token = fc.oneof(
          fc.string({ maxLength: 500 }),
          fc
            .tuple(
              fc.jsonValue({ maxDepth: 2 }),
              fc.jsonValue({ maxDepth: 2 }),
              fc.string({ maxLength: 100 }),
            )
            .map(([h, p, s]) => `${b64(h)}.${b64(p)}.${Buffer.from(s).toString('base64url')}`),
          fc
            .record({
              alg: fc.constantFrom('ES256', 'none', 'HS256', 'RS256', '__proto__'),
              kid: fc.oneof(fc.constant('kid-1'), fc.string({ maxLength: 300 }), fc.constant(42)),
            })
            .map((h) => `${b64(h)}.${b64({ iat: 1 })}.`),
        );
        await fc.assert(
          fc.asyncProperty(token, bytesOrText, async (t, body) => {
            const result = await verifier.verify(body, t);
            expect(result.kind).toBe('rejected');
          }),
          settings,
        );
      },
      FUZZ_TIMEOUT_MS,
    );

    it(
      `a genuinely signed JWT with hostile claims is verified only when every rule holds (${RUNS} runs)`,
      async () => {
        await fc.assert(
          fc.asyncProperty(
            bytesOrText,
            fc.record(
              {
                iat: fc.oneof(
                  fc.integer(),
                  fc.string(),
                  fc.constant(Math.floor(Date.now() / 1000)),
                ),
                request_body_sha256: fc.oneof(
                  fc.string({ maxLength: 80 }),
                  fc.constant('0'.repeat(64)),
                ),
                __proto__: fc.jsonValue({ maxDepth: 1 }),
              },
              { requiredKeys: [] },
            ),
            async (body, claims) => {
              const now = Math.floor(Date.now() / 1000);
              const actual = createHash('sha256').update(body).digest('hex');
              const iat = 'iat' in claims ? claims.iat : now;
              const sha = 'request_body_sha256' in claims ? claims.request_body_sha256 : actual;
              const holds =
                typeof iat === 'number' && now - iat <= 300 && iat - now <= 30 && sha === actual;
              const result = await verifier.verify(body, await sign(body, {}, claims));
              expect(result.kind).toBe(holds ? 'verified' : 'rejected');
            },
          ),
          settings,
        );
      },
      FUZZ_TIMEOUT_MS,
    );
  });
});
