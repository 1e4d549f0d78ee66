import {
  Inject,
  Injectable,
  UnauthorizedException,
  type CanActivate,
  type ExecutionContext,
} from '@nestjs/common';
import { createHash, timingSafeEqual } from 'node:crypto';

/** The request property the caller's name is put in. */
export const PRINCIPAL = 'principal';
/** Provider of the name:token pairs the guard accepts (ADMIN_API_TOKENS, PROJECTOR_API_TOKENS). */
export const BEARER_TOKENS = Symbol('BEARER_TOKENS');

interface HttpRequest {
  headers: Record<string, string | string[] | undefined>;
  [PRINCIPAL]?: string;
}

const digest = (text: string) => createHash('sha256').update(text).digest();

/**
 * Bearer-token authentication for the HTTP APIs. Tokens are configured as name:token; comparison is constant-time over SHA-256 digests, and the caller's name (never the
 * token) is what gets recorded and logged.
 */
@Injectable()
export class BearerAuthGuard implements CanActivate {
  private readonly principals: { name: string; digest: Buffer }[];

  constructor(@Inject(BEARER_TOKENS) tokens: readonly { name: string; token: string }[]) {
    this.principals = tokens.map((t) => ({ name: t.name, digest: digest(t.token) }));
  }

  canActivate(context: ExecutionContext): boolean {
    const request = context.switchToHttp().getRequest<HttpRequest>();
    const header = request.headers.authorization;
    const match = /^Bearer\s+(\S+)$/i.exec(typeof header === 'string' ? header : '');
    if (!match)
      throw new UnauthorizedException({
        error: { code: 'UNAUTHENTICATED', message: 'send Authorization: Bearer <token>' },
      });
    const presented = digest(match[1]!);
    let principal: string | undefined;
    for (const p of this.principals) if (timingSafeEqual(p.digest, presented)) principal = p.name;
    if (!principal)
      throw new UnauthorizedException({
        error: { code: 'UNAUTHENTICATED', message: 'unknown token' },
      });
    request[PRINCIPAL] = principal;
    return true;
  }
}
