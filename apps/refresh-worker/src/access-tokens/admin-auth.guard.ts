import {
  Inject,
  Injectable,
  UnauthorizedException,
  type CanActivate,
  type ExecutionContext,
} from '@nestjs/common';
import type { Request } from 'express';
import { createHash, timingSafeEqual } from 'node:crypto';

export const ADMIN_PRINCIPAL = 'adminPrincipal';
/** Provider of the name:token pairs from ADMIN_API_TOKENS. */
export const ADMIN_TOKENS = Symbol('ADMIN_TOKENS');

const digest = (text: string) => createHash('sha256').update(text).digest();

/**
 * Bearer-token authentication for the access-token API. Tokens come from ADMIN_API_TOKENS as
 * name:token; comparison is constant-time over SHA-256 digests, and the caller's name (never the
 * token) is what gets recorded and logged.
 */
@Injectable()
export class AdminAuthGuard implements CanActivate {
  private readonly principals: { name: string; digest: Buffer }[];

  constructor(@Inject(ADMIN_TOKENS) tokens: readonly { name: string; token: string }[]) {
    this.principals = tokens.map((t) => ({ name: t.name, digest: digest(t.token) }));
  }

  canActivate(context: ExecutionContext): boolean {
    const request = context.switchToHttp().getRequest<Request & { [ADMIN_PRINCIPAL]?: string }>();
    const match = /^Bearer\s+(\S+)$/i.exec(request.headers.authorization ?? '');
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
    request[ADMIN_PRINCIPAL] = principal;
    return true;
  }
}
