import { z } from 'zod';
import {
  ApiError,
  ErrorSummary,
  Refresh,
  ItemListQuery,
  ItemPage,
  ItemRefreshState,
  PageQuery,
  RefreshPage,
} from './read-api.schemas';
import {
  ItemReport,
  ReportAccount,
  ReportFetch,
  ReportFetchFailure,
  StoredTransaction,
  TransactionPage,
  TransactionQuery,
} from './report-api.schemas';

type Schema = Record<string, unknown>;

/** Query parameters of a zod object schema, as OpenAPI parameters. */
function queryParameters(schema: z.ZodObject): Schema[] {
  const json = z.toJSONSchema(schema, { io: 'input' }) as {
    properties: Record<string, Schema>;
  };
  return Object.entries(json.properties).map(([name, property]) => {
    const { description, ...rest } = property;
    return {
      name,
      in: 'query',
      required: false,
      ...(description ? { description } : {}),
      schema: rest,
    };
  });
}

const itemIdParameter = {
  name: 'item_id',
  in: 'path',
  required: true,
  description: "Plaid's item_id.",
  schema: { type: 'string' },
};

const errors = {
  '400': { $ref: '#/components/responses/InvalidParameter' },
  '401': { $ref: '#/components/responses/Unauthenticated' },
};

const json = (ref: string, description: string) => ({
  description,
  content: { 'application/json': { schema: { $ref: `#/components/schemas/${ref}` } } },
});

/** The projector's read API as an OpenAPI 3.1 document, generated from the zod schemas. */
export function buildOpenApiDocument() {
  const registry = z.registry<{ id: string }>();
  const named = {
    ErrorSummary,
    Refresh,
    ItemRefreshState,
    ItemPage,
    RefreshPage,
    ReportFetch,
    ReportFetchFailure,
    ReportAccount,
    ItemReport,
    StoredTransaction,
    TransactionPage,
    ApiError,
  };
  for (const [id, schema] of Object.entries(named)) registry.add(schema, { id });
  const { schemas } = z.toJSONSchema(registry, {
    uri: (id) => `#/components/schemas/${id}`,
  });
  const components: Record<string, Schema> = {};
  for (const [id, schema] of Object.entries(schemas)) {
    const rest: Schema = { ...schema };
    delete rest.$schema;
    delete rest.$id;
    components[id] = rest;
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'cashflow-refresh projection API',
      version: '1.0.0',
      description:
        "Read-only access to the per-Item refresh state the projector keeps in PostgreSQL, and to each Item's Cashflow Report as the report fetcher stored it (people's bank transactions: hand tokens out accordingly). Every path but /openapi.json needs Authorization: Bearer <token> (PROJECTOR_API_TOKENS).",
    },
    security: [{ bearer: [] }],
    paths: {
      '/items': {
        get: {
          operationId: 'listItems',
          summary: 'Items by status, last error code or stuck, ordered by item_id.',
          parameters: queryParameters(ItemListQuery),
          responses: { '200': json('ItemPage', 'A page of Items.'), ...errors },
        },
      },
      '/items/{item_id}/refresh-state': {
        get: {
          operationId: 'getItemRefreshState',
          summary: "An Item's refresh state.",
          parameters: [itemIdParameter],
          responses: {
            '200': json('ItemRefreshState', 'The Item.'),
            '404': { $ref: '#/components/responses/NotFound' },
            ...errors,
          },
        },
      },
      '/items/{item_id}/refreshes': {
        get: {
          operationId: 'listItemRefreshes',
          summary: "An Item's refresh requests and their outcomes, newest first.",
          parameters: [itemIdParameter, ...queryParameters(PageQuery)],
          responses: {
            '200': json('RefreshPage', 'A page of refreshes.'),
            '404': { $ref: '#/components/responses/NotFound' },
            ...errors,
          },
        },
      },
      '/items/{item_id}/report': {
        get: {
          operationId: 'getItemReport',
          summary:
            "An Item's stored Cashflow Report: its newest fetch, accounts, transaction counts, insights and a newer failed fetch.",
          parameters: [itemIdParameter],
          responses: {
            '200': json('ItemReport', 'The report.'),
            '404': { $ref: '#/components/responses/NoReport' },
            ...errors,
          },
        },
      },
      '/items/{item_id}/transactions': {
        get: {
          operationId: 'listItemTransactions',
          summary:
            "An Item's stored transactions as Plaid gave them, newest first; removed ones only on request.",
          parameters: [itemIdParameter, ...queryParameters(TransactionQuery)],
          responses: {
            '200': json('TransactionPage', 'A page of transactions.'),
            '404': { $ref: '#/components/responses/NoReport' },
            ...errors,
          },
        },
      },
    },
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
      schemas: components,
      responses: {
        NotFound: json('ApiError', 'No refresh state for that Item.'),
        NoReport: json('ApiError', 'No report of that Item has been fetched.'),
        InvalidParameter: json('ApiError', 'A parameter is invalid; the message names it.'),
        Unauthenticated: json('ApiError', 'No bearer token, or one not in PROJECTOR_API_TOKENS.'),
      },
    },
  };
}
