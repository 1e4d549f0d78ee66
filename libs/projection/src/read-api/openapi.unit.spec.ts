import { Validator } from '@seriousme/openapi-schema-validator';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { buildOpenApiDocument } from './openapi';

const DOC_PATH = join(__dirname, '../../../../docs/projector-openapi.yaml');

describe('docs/projector-openapi.yaml', () => {
  const checkedIn: unknown = parse(readFileSync(DOC_PATH, 'utf8'));

  it('is a valid OpenAPI 3.1 document', async () => {
    const result = await new Validator().validate(
      checkedIn as Parameters<Validator['validate']>[0],
    );
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
  });

  it('is exactly what the code generates (regenerate with `npm run docs:openapi`)', () => {
    expect(checkedIn).toEqual(buildOpenApiDocument());
  });
});
