import { z } from 'zod';

/** Start-up stops with this when a variable is missing or invalid; it names every variable. */
export class ConfigError extends Error {
  constructor(
    readonly service: string,
    readonly problems: readonly { variable: string; message: string }[],
  ) {
    super(
      `Invalid configuration for ${service}:\n` +
        problems.map((p) => `  ${p.variable}: ${p.message}`).join('\n'),
    );
    this.name = 'ConfigError';
  }
}

/**
 * Validates environment variables against a schema whose keys are the variable names, so every
 * problem is reported under the name a person sets. Values are never echoed (some are secrets).
 */
export function loadConfig<S extends z.ZodType>(
  service: string,
  schema: S,
  env: NodeJS.ProcessEnv = process.env,
): z.output<S> {
  // Empty variables count as unset: `FOO=` in a .env file means "use the default".
  const cleaned = Object.fromEntries(
    Object.entries(env).filter(([, v]) => v !== undefined && v !== ''),
  );
  const result = schema.safeParse(cleaned, { reportInput: true });
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => ({
    variable: issue.path.length ? String(issue.path[0]) : '(environment)',
    message:
      issue.code === 'invalid_type' && issue.input === undefined ? 'required' : issue.message,
  }));
  throw new ConfigError(service, problems);
}
