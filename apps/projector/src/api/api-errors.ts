import { ItemId, fromZodIssues } from '@cashflow/contracts';
import { BadRequestException, NotFoundException } from '@nestjs/common';
import type { z } from 'zod';
import { InvalidCursorError } from './cursor';

/** Parameters parsed with their zod schema; 400 INVALID_PARAMETER naming the first bad one. */
export function parse<T extends z.ZodType>(schema: T, input: unknown): z.infer<T> {
  const result = schema.safeParse(input);
  if (!result.success) {
    throw new BadRequestException({
      error: { code: 'INVALID_PARAMETER', message: fromZodIssues(result.error.issues).message },
    });
  }
  return result.data;
}

export function itemIdOf(raw: string): string {
  return parse(ItemId, raw);
}

/** A page's query, answered 400 when its cursor is not one this API handed out. */
export async function orBadCursor<T>(work: Promise<T>): Promise<T> {
  try {
    return await work;
  } catch (error) {
    if (error instanceof InvalidCursorError) {
      throw new BadRequestException({
        error: { code: 'INVALID_PARAMETER', message: error.message },
      });
    }
    throw error;
  }
}

export function notFound(message: string): NotFoundException {
  return new NotFoundException({ error: { code: 'NOT_FOUND', message } });
}
