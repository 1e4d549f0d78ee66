import { createHash } from 'node:crypto';
import { DLQ_HEADERS, MAX_DEAD_LETTER_VALUE_BYTES, deadLetterRecord } from './dead-letter';

const time = new Date('2026-11-24T10:00:00.000Z');
const reason = {
  code: 'SCHEMA_VIOLATION',
  field: 'data.item_id',
  message: 'data.item_id: missing',
};
const position = { topic: 'cashflow-refresh.refresh-requested.v1', partition: 3, offset: '42' };

describe('deadLetterRecord', () => {
  it('keeps key, value and headers byte for byte and says why, where and when', () => {
    const value = Buffer.from([0x7b, 0xff, 0x00, 0x7d]);
    const letter = deadLetterRecord(
      {
        key: Buffer.from('item-1'),
        value,
        headers: { ce_id: Buffer.from('id-1'), 'content-type': 'application/json' },
      },
      reason,
      position,
      'cashflow-refresh-worker',
      time,
    );
    expect(letter.key).toEqual(Buffer.from('item-1'));
    expect(letter.value).toEqual(value);
    expect(letter.headers).toEqual({
      ce_id: Buffer.from('id-1'),
      'content-type': 'application/json',
      [DLQ_HEADERS.reason]: 'data.item_id: missing',
      [DLQ_HEADERS.errorCode]: 'SCHEMA_VIOLATION',
      [DLQ_HEADERS.field]: 'data.item_id',
      [DLQ_HEADERS.sourceTopic]: 'cashflow-refresh.refresh-requested.v1',
      [DLQ_HEADERS.sourcePartition]: '3',
      [DLQ_HEADERS.sourceOffset]: '42',
      [DLQ_HEADERS.consumer]: 'cashflow-refresh-worker',
      [DLQ_HEADERS.time]: '2026-11-24T10:00:00.000Z',
    });
  });

  it('records an HTTP route as http:<route>, with no partition or offset', () => {
    const letter = deadLetterRecord(
      { key: null, value: Buffer.from('{'), headers: { webhook_delivery_id: 'abc' } },
      { code: 'INVALID_JSON', field: '(body)', message: 'the body is not JSON' },
      { route: 'POST /webhooks/plaid' },
      'webhook-ingress',
      time,
    );
    expect(letter.key).toBeNull();
    expect(letter.headers[DLQ_HEADERS.sourceTopic]).toBe('http:POST /webhooks/plaid');
    expect(letter.headers).not.toHaveProperty(DLQ_HEADERS.sourcePartition);
    expect(letter.headers).not.toHaveProperty(DLQ_HEADERS.sourceOffset);
    expect(letter.headers.webhook_delivery_id).toBe('abc');
  });

  it('replaces the dlq_* headers of an earlier dead-lettering and keeps a repeated header’s last value', () => {
    const letter = deadLetterRecord(
      {
        key: 'item-1',
        value: 'x',
        headers: {
          [DLQ_HEADERS.errorCode]: 'OLD',
          [DLQ_HEADERS.valueTruncated]: '99',
          trace: [Buffer.from('first'), Buffer.from('last')],
          gone: undefined,
        },
      },
      reason,
      position,
      'projector',
      time,
    );
    expect(letter.headers[DLQ_HEADERS.errorCode]).toBe('SCHEMA_VIOLATION');
    expect(letter.headers).not.toHaveProperty(DLQ_HEADERS.valueTruncated);
    expect(letter.headers.trace).toEqual(Buffer.from('last'));
    expect(letter.headers).not.toHaveProperty('gone');
    expect(letter.value).toEqual(Buffer.from('x'));
  });

  it('cuts the reason to one bounded line', () => {
    const letter = deadLetterRecord(
      { key: null, value: null },
      { ...reason, message: 'm'.repeat(5000) },
      position,
      'projector',
      time,
    );
    expect(letter.headers[DLQ_HEADERS.reason]).toHaveLength(1000);
    expect(letter.value).toBeNull();
  });

  it('keeps a value of exactly the limit whole', () => {
    const value = Buffer.alloc(MAX_DEAD_LETTER_VALUE_BYTES, 0x61);
    const letter = deadLetterRecord({ key: null, value }, reason, position, 'projector', time);
    expect(letter.value).toHaveLength(MAX_DEAD_LETTER_VALUE_BYTES);
    expect(letter.headers).not.toHaveProperty(DLQ_HEADERS.valueTruncated);
  });

  it('truncates a larger value, with its length and SHA-256 in headers', () => {
    const value = Buffer.alloc(MAX_DEAD_LETTER_VALUE_BYTES + 10, 0x62);
    value[value.length - 1] = 0x63;
    for (const given of [value, value.toString('latin1')]) {
      const letter = deadLetterRecord({ key: null, value: given }, reason, position, 'p', time);
      expect(letter.value?.equals(value.subarray(0, MAX_DEAD_LETTER_VALUE_BYTES))).toBe(true);
      expect(letter.headers[DLQ_HEADERS.valueTruncated]).toBe(String(value.length));
      expect(letter.headers[DLQ_HEADERS.valueSha256]).toBe(
        createHash('sha256').update(value).digest('hex'),
      );
    }
  });
});
