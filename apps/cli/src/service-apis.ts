import { cliVariables, loadConfig } from '@cashflow/config';
import { z } from 'zod';

const SERVICE = 'cli';

/** The answer's JSON; an error answer becomes an Error with the service's message. */
async function answer(response: Response, service: string): Promise<unknown> {
  const text = await response.text();
  let body: unknown = undefined;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    // Not JSON: only the status is known.
  }
  if (!response.ok) {
    // Our services answer { error: { code, message } }; a bare { error: "..." } is read too.
    const error = (body as { error?: unknown } | undefined)?.error;
    const message =
      typeof error === 'string'
        ? error
        : typeof (error as { message?: unknown } | undefined)?.message === 'string'
          ? (error as { message: string }).message
          : undefined;
    throw new Error(message ?? `the ${service} answered ${response.status}`);
  }
  return body;
}

function unreachable(service: string, url: string) {
  return (error: Error): never => {
    throw new Error(`the ${service} at ${url} did not answer (${error.message})`);
  };
}

/** GET on the projector's read API (PROJECTOR_URL, PROJECTOR_API_TOKEN). */
export async function projectorApi(path: string): Promise<unknown> {
  const env = loadConfig(SERVICE, z.object({ ...cliVariables }));
  if (!env.PROJECTOR_API_TOKEN) {
    throw new Error(
      'PROJECTOR_API_TOKEN is not set: export one of the tokens of PROJECTOR_API_TOKENS (the part after "name:")',
    );
  }
  const response = await fetch(new URL(path, env.PROJECTOR_URL), {
    headers: { authorization: `Bearer ${env.PROJECTOR_API_TOKEN}` },
  }).catch(unreachable('projector', env.PROJECTOR_URL));
  return answer(response, 'projector');
}

/** A request to the report fetcher's admin API (REPORT_FETCHER_URL, ADMIN_API_TOKEN). */
export async function reportFetcherApi(method: 'GET' | 'POST', path: string): Promise<unknown> {
  const env = loadConfig(SERVICE, z.object({ ...cliVariables }));
  if (!env.ADMIN_API_TOKEN) {
    throw new Error(
      'ADMIN_API_TOKEN is not set: export one of the tokens of ADMIN_API_TOKENS (the part after "name:")',
    );
  }
  const response = await fetch(new URL(path, env.REPORT_FETCHER_URL), {
    method,
    headers: { authorization: `Bearer ${env.ADMIN_API_TOKEN}` },
  }).catch(unreachable('report fetcher', env.REPORT_FETCHER_URL));
  return answer(response, 'report fetcher');
}
