import { z } from 'zod';
import type { Searchable } from './invariants';

/**
 * Spans exported as OTLP/JSON, the form the apps' exporter sends and an OpenTelemetry
 * collector's `file` exporter writes (one ExportTraceServiceRequest per line). Only the parts
 * that can carry text are read; anything else in the file is ignored.
 */
const KeyValue = z.looseObject({ key: z.string(), value: z.unknown() });
const Attributes = z.array(KeyValue).optional();
const Span = z.looseObject({
  name: z.string().optional(),
  attributes: Attributes,
  events: z
    .array(z.looseObject({ name: z.string().optional(), attributes: Attributes }))
    .optional(),
  links: z
    .array(z.looseObject({ attributes: Attributes, traceState: z.string().optional() }))
    .optional(),
  status: z.looseObject({ message: z.string().optional() }).optional(),
  traceState: z.string().optional(),
});
const ExportRequest = z.looseObject({
  resourceSpans: z
    .array(
      z.looseObject({
        resource: z.looseObject({ attributes: Attributes }).optional(),
        scopeSpans: z.array(z.looseObject({ spans: z.array(Span).optional() })).optional(),
      }),
    )
    .optional(),
});

/** Thrown for a file that is not OTLP/JSON: `check` says so rather than search nothing. */
export class SpanFileError extends Error {
  constructor(file: string, line: number, reason: string) {
    super(`${file}:${line}: not OTLP/JSON trace data (${reason})`);
    this.name = 'SpanFileError';
  }
}

/**
 * Every span of an OTLP/JSON file as a text to search for secrets: its name, attributes, events,
 * links, status message and its resource's attributes. A file holds one export request, or one
 * per line.
 */
export function spanSearchables(file: string, content: string): Searchable[] {
  const trimmed = content.trim();
  if (trimmed === '') return [];
  const out: Searchable[] = [];
  for (const { line, parsed } of exportRequests(file, trimmed)) {
    const request = ExportRequest.safeParse(parsed);
    if (!request.success) throw new SpanFileError(file, line, request.error.issues[0]!.message);
    for (const resourceSpans of request.data.resourceSpans ?? []) {
      const resource = JSON.stringify(resourceSpans.resource?.attributes ?? []);
      for (const scope of resourceSpans.scopeSpans ?? []) {
        for (const span of scope.spans ?? []) {
          out.push({
            where: `span "${span.name ?? '?'}" in ${file}:${line}`,
            text: [
              span.name ?? '',
              JSON.stringify(span.attributes ?? []),
              JSON.stringify(span.events ?? []),
              JSON.stringify(span.links ?? []),
              span.status?.message ?? '',
              span.traceState ?? '',
              resource,
            ].join('\n'),
          });
        }
      }
    }
  }
  return out;
}

/** The whole file as one JSON document, or else one per non-empty line. */
function exportRequests(file: string, content: string): { line: number; parsed: unknown }[] {
  try {
    return [{ line: 1, parsed: JSON.parse(content) }];
  } catch {
    // not one document: JSON lines
  }
  return content.split('\n').flatMap((json, i) => {
    if (!json.trim()) return [];
    try {
      return [{ line: i + 1, parsed: JSON.parse(json) as unknown }];
    } catch (error) {
      throw new SpanFileError(file, i + 1, (error as Error).message);
    }
  });
}
