import { checkSecrets } from './invariants';
import { SpanFileError, spanSearchables } from './span-files';

const TOKEN = 'access-sandbox-00000000-fake-token-for-tests';

function exportRequest(spans: object[], resource: object[] = []) {
  return {
    resourceSpans: [
      {
        resource: { attributes: resource },
        scopeSpans: [{ scope: { name: 'cashflow-refresh' }, spans }],
      },
    ],
  };
}

const span = (name: string, attributes: object[] = [], extra: object = {}) => ({
  traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
  spanId: '00f067aa0ba902b7',
  name,
  attributes,
  ...extra,
});

const attr = (key: string, value: string) => ({ key, value: { stringValue: value } });

describe('check --spans: spans searched for secrets', () => {
  it('finds a token in an attribute, an event or the status of any span', () => {
    const file = [
      exportRequest([span('clean', [attr('plaid.request_id', 'req-1')])]),
      exportRequest([
        span('in attribute', [attr('http.request.body', `{"access_token":"${TOKEN}"}`)]),
      ]),
      exportRequest([
        span('in event', [], { events: [{ name: 'x', attributes: [attr('e', TOKEN)] }] }),
      ]),
      exportRequest([span('in status', [], { status: { code: 2, message: `bad ${TOKEN}` } })]),
    ]
      .map((r) => JSON.stringify(r))
      .join('\n');
    const found = checkSecrets(spanSearchables('spans.jsonl', file), []);
    expect(found.holds).toBe(false);
    expect(found.counts).toMatchObject({ searched: 4, leaks: 3 });
    expect(found.examples.join('\n')).toContain('span "in attribute" in spans.jsonl:2');
    expect(found.examples.join('\n')).not.toContain('"clean"');
  });

  it('finds a known secret value in a resource attribute', () => {
    const file = JSON.stringify(
      exportRequest([span('a')], [attr('deployment', 'secret-value-of-plaid-1234')]),
      null,
      2,
    );
    const found = checkSecrets(spanSearchables('one.json', file), [
      { name: 'PLAID_SECRET', value: 'secret-value-of-plaid-1234' },
    ]);
    expect(found.holds).toBe(false);
    expect(found.examples).toEqual(['span "a" in one.json:1 contains PLAID_SECRET']);
  });

  it('holds for spans without secrets, and counts them', () => {
    const file = JSON.stringify(exportRequest([span('a'), span('b')]));
    const found = checkSecrets(spanSearchables('ok.json', file), []);
    expect(found).toMatchObject({ holds: true, counts: { searched: 2, leaks: 0 } });
  });

  it('refuses a file that is not OTLP/JSON rather than search nothing', () => {
    expect(() => spanSearchables('log.txt', 'plain text\n')).toThrow(SpanFileError);
    expect(() => spanSearchables('x.json', '{"resourceSpans": 3}')).toThrow(/x.json:1/);
  });
});
