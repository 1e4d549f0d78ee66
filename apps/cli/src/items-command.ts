import {
  accessTokenVariables,
  cliVariables,
  databaseVariables,
  loadConfig,
} from '@cashflow/config';
import { createDataSource } from '@cashflow/persistence';
import type { Command } from 'commander';
import { z } from 'zod';
import { TokenCipher, TokenVault } from '@cashflow/access-tokens';

const SERVICE = 'cli';

/** Reads the access token from standard input: never from the command line, where `ps` shows it. */
async function readToken(): Promise<string> {
  if (process.stdin.isTTY) process.stderr.write('access token (input hidden from history): ');
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  const token = Buffer.concat(chunks).toString('utf8').trim();
  if (!token)
    throw new Error(
      'no access token on standard input (pipe it in: ... | cashflow-refresh items add ITEM_ID)',
    );
  return token;
}

async function workerApi(method: string, itemId: string, body?: unknown): Promise<Response> {
  const env = loadConfig(SERVICE, z.object({ ...cliVariables }));
  if (!env.ADMIN_API_TOKEN) {
    throw new Error(
      'ADMIN_API_TOKEN is not set: export one of the tokens of ADMIN_API_TOKENS (the part after "name:")',
    );
  }
  return fetch(
    new URL(`/items/${encodeURIComponent(itemId)}/access-token`, env.REFRESH_WORKER_URL),
    {
      method,
      headers: {
        authorization: `Bearer ${env.ADMIN_API_TOKEN}`,
        'content-type': 'application/json',
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    },
  );
}

async function answer(
  response: Response,
  json: boolean,
  describe: (body: Record<string, string>) => string,
) {
  const text = await response.text();
  const body = text
    ? (JSON.parse(text) as Record<string, string> & { error?: { message?: string } })
    : {};
  if (!response.ok)
    throw new Error(body.error?.message ?? `the worker answered ${response.status}`);
  process.stdout.write(json ? `${JSON.stringify(body)}\n` : `${describe(body)}\n`);
}

/** `items add|rotate|remove|show`: an Item's Plaid access token, through the worker's API. */
export function addItemsCommands(program: Command): void {
  const items = program
    .command('items')
    .description(
      "Register, rotate and remove Items' Plaid access tokens (REFRESH_WORKER_URL, ADMIN_API_TOKEN).",
    );

  for (const [name, verb] of [
    ['add', 'registered'],
    ['rotate', 'rotated'],
  ] as const) {
    items
      .command(`${name} <item_id>`)
      .description(
        `${name === 'add' ? 'Register' : 'Replace'} the Item's access token, read from standard input.`,
      )
      .option('--json', 'print JSON')
      .action(async (itemId: string, opts: { json?: boolean }) => {
        const response = await workerApi('PUT', itemId, { access_token: await readToken() });
        await answer(
          response,
          Boolean(opts.json),
          (b) => `${verb} token for ${b.item_id} (key ${b.key_id})`,
        );
      });
  }

  items
    .command('remove <item_id>')
    .description(
      "Remove the Item's access token; its refresh requests then fail with UNKNOWN_ITEM.",
    )
    .option('--json', 'print JSON')
    .action(async (itemId: string, opts: { json?: boolean }) => {
      const response = await workerApi('DELETE', itemId);
      await answer(response, Boolean(opts.json), () => `removed token for ${itemId}`);
    });

  items
    .command('show <item_id>')
    .description('Whether a token is registered, by whom and under which key (never the token).')
    .option('--json', 'print JSON')
    .action(async (itemId: string, opts: { json?: boolean }) => {
      const response = await workerApi('GET', itemId);
      await answer(
        response,
        Boolean(opts.json),
        (b) =>
          `${b.item_id}: registered by ${b.registered_by}, key ${b.key_id}, updated ${b.updated_at}`,
      );
    });

  program
    .command('tokens')
    .description('Access tokens at rest.')
    .command('reencrypt')
    .description(
      'Re-encrypt every token not under TOKEN_ENCRYPTION_KEY_ID (after adding a key to TOKEN_ENCRYPTION_KEYS); DATABASE_URL.',
    )
    .action(async () => {
      const env = loadConfig(
        SERVICE,
        z
          .object({ ...databaseVariables, ...accessTokenVariables })
          .omit({ ADMIN_API_TOKENS: true }),
      );
      const keyId = env.TOKEN_ENCRYPTION_KEY_ID ?? [...env.TOKEN_ENCRYPTION_KEYS.keys()][0]!;
      const db = await createDataSource({
        url: env.DATABASE_URL,
        applicationName: 'cashflow-cli',
        poolSize: 1,
      }).initialize();
      try {
        const count = await new TokenVault(
          db,
          new TokenCipher(env.TOKEN_ENCRYPTION_KEYS, keyId),
        ).reencryptAll();
        process.stdout.write(`re-encrypted ${count} token(s) under key ${keyId}\n`);
      } finally {
        await db.destroy();
      }
    });
}
