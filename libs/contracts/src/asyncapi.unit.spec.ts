import { DiagnosticSeverity, Parser } from '@asyncapi/parser';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { buildAsyncApiDocument } from './asyncapi';
import { EVENTS, EVENT_TYPES } from './events';
import { dataJsonSchema } from './json-schema';
import { TOPICS, TOPIC_KEYS } from './topics';

const DOC_PATH = join(__dirname, '../../../docs/asyncapi.yaml');
const text = readFileSync(DOC_PATH, 'utf8');

describe('docs/asyncapi.yaml', () => {
  it('is a valid AsyncAPI 3 document', async () => {
    const { document, diagnostics } = await new Parser().parse(text);
    const errors = diagnostics.filter((d) => DiagnosticSeverity[d.severity] === 'Error');
    expect(errors.map((e) => `${e.path.join('.')}: ${e.message}`)).toEqual([]);
    expect(document?.version()).toBe('3.0.0');
  });

  it('is exactly what the code generates (regenerate with `npm run docs:asyncapi`)', () => {
    expect(parse(text)).toEqual(buildAsyncApiDocument());
  });

  it('describes every topic, and every event with the schema the code validates with', async () => {
    const { document } = await new Parser().parse(text);
    const addresses = document!
      .channels()
      .all()
      .map((c) => c.address());
    expect(addresses.sort()).toEqual(TOPIC_KEYS.map((k) => TOPICS[k].name).sort());

    for (const type of EVENT_TYPES) {
      const message = document!.components().messages().get(type);
      expect(message?.payload()?.json()).toMatchObject({ schema: dataJsonSchema(type) });
      expect(message?.headers()?.json()).toMatchObject({
        schema: { properties: { ce_type: { const: EVENTS[type].cloudEventType } } },
      });
    }
  });
});
