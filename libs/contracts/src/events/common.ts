import { z } from 'zod';

/**
 * Plaid's item_id. Plaid's are short alphanumerics, but the service treats them as opaque text:
 * any non-empty string without control characters travels end to end unchanged.
 */
export const ItemId = z
  .string()
  .min(1)
  .max(256)
  // eslint-disable-next-line no-control-regex
  .regex(/^[^\u0000-\u001f\u007f]+$/, 'must not contain control characters')
  .describe('Plaid item_id of the Item; also the Kafka message key and the CloudEvents subject.');

export const EventId = z
  .string()
  .min(1)
  .max(200)
  .describe('A CloudEvents id: unique per event; a republished event keeps its id.');

export const Timestamp = z.iso
  .datetime({ offset: true })
  .describe('RFC 3339 date-time with a time zone offset or Z.');

export const DaysRequested = z
  .number()
  .int()
  .min(1)
  .max(730)
  .describe('Days of history Plaid refreshes: an integer from 1 to 730.');

export const Attempts = z
  .number()
  .int()
  .min(0)
  .describe('Number of Plaid calls made for this request (0 when it failed before Plaid).');

/**
 * Plaid's error object (schema PlaidError in Plaid's OpenAPI spec). Unknown fields are kept:
 * Plaid adds fields without notice.
 */
export const PlaidError = z
  .looseObject({
    error_type: z.string().min(1).describe('Broad category, e.g. ITEM_ERROR, API_ERROR.'),
    error_code: z.string().min(1).describe('Specific code, e.g. ITEM_LOGIN_REQUIRED.'),
    error_message: z.string().describe('Developer-facing message.'),
    display_message: z.string().nullable().optional().describe('User-facing message or null.'),
    request_id: z.string().optional(),
    status: z.number().int().nullable().optional().describe('HTTP status Plaid answered with.'),
    documentation_url: z.string().optional(),
    suggested_action: z.string().nullable().optional(),
    error_code_reason: z.string().nullable().optional(),
    causes: z.array(z.unknown()).optional(),
  })
  .describe('A Plaid error object as Plaid sent it.');
export type PlaidError = z.infer<typeof PlaidError>;

/** How a verified Plaid webhook reached us; shared by ReportReady and ReportFailed. */
export const WebhookDelivery = {
  item_id: ItemId,
  webhook_type: z.string().min(1).describe("Plaid's webhook_type as received."),
  webhook_code: z.string().min(1).describe("Plaid's webhook_code, e.g. CASHFLOW_REPORT_READY."),
  environment: z
    .string()
    .nullable()
    .describe("Plaid's environment field (sandbox or production), null when absent."),
  received_at: Timestamp.describe('When the ingress received the verified webhook.'),
  delivery_id: z
    .string()
    .min(1)
    .describe(
      'Identifies one signed delivery (SHA-256 of its verification JWT): the same request received again has the same id. Plaid signs each retry afresh, so a retry has a new id.',
    ),
  webhook: z
    .record(z.string(), z.unknown())
    .describe('The verified webhook body as Plaid sent it, unknown fields included.'),
};
