import { z } from 'zod';

/**
 * Pages are keyset-paginated: a cursor is the last row's sort key, opaque to clients (base64url
 * JSON). A cursor is checked against the key's shape before it reaches SQL.
 */
export class InvalidCursorError extends Error {
  constructor() {
    super('cursor: not a cursor this API returned');
  }
}

export function encodeCursor(key: readonly unknown[]): string {
  return Buffer.from(JSON.stringify(key)).toString('base64url');
}

export function decodeCursor<T extends z.ZodTuple>(cursor: string, key: T): z.infer<T> {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(cursor, 'base64url').toString());
  } catch {
    throw new InvalidCursorError();
  }
  const result = key.safeParse(value);
  if (!result.success) throw new InvalidCursorError();
  return result.data;
}
