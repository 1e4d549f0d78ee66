import { z } from 'zod';
import vendored from '../../apps/plaid-sandbox/spec/plaid-schemas.json';

/**
 * Plaid's own schemas (from its official OpenAPI spec, vendored by
 * scripts/vendor-plaid-schemas.mjs), as validators: an independent check of what the sandbox sends.
 */
export type PlaidSchemaName = keyof typeof vendored.schemas;

const validators = new Map<PlaidSchemaName, z.ZodType>();

export function plaidSchema(name: PlaidSchemaName): z.ZodType {
  let validator = validators.get(name);
  if (!validator) {
    validator = z.fromJSONSchema(vendored.schemas[name] as Parameters<typeof z.fromJSONSchema>[0]);
    validators.set(name, validator);
  }
  return validator;
}

/** The problems `value` has against Plaid's schema `name`: empty when it conforms. */
export function nonConformities(name: PlaidSchemaName, value: unknown): string[] {
  const result = plaidSchema(name).safeParse(value);
  return result.success ? [] : result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
}
