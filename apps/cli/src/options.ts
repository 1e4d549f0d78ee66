import type { z } from 'zod';

/** A command-line option's value parsed with its schema; the error names the option. */
export function parseOption<T extends z.ZodType>(
  name: string,
  schema: T,
  value: string,
): z.infer<T> {
  const result = schema.safeParse(value);
  if (!result.success) throw new Error(`${name}: ${result.error.issues[0]?.message ?? 'invalid'}`);
  return result.data;
}
