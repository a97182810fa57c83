import { SignJWT, jwtVerify, errors as joseErrors } from 'jose';
import { AppError } from '../core/errors.js';
import { iso, type Clock } from '../core/clock.js';
import { randomToken, uuidv7 } from '../core/ids.js';
import type { UserRepository, User, PlatformRole } from '../users/repository.js';
import { normaliseEmail } from '../users/service.js';
import type { Action } from './permissions.js';
import { hashToken, type ServerKeys } from './keys.js';
import { dummyPasswordHash, verifyPassword } from '../users/passwords.js';
import type { LoginLimiter } from './rate-limit.js';
import type { PersonalAccessToken, TokenRepository } from './repository.js';
import type { SessionRegistry } from './sessions.js';
import type { PrincipalCache } from './principals.js';
import type { OrgRole } from './permissions.js';

/** Who is calling the management API. */
export interface Principal {
  userId: string;
  email: string;
  platformRole: PlatformRole;
  /** The login session of an access token (absent for a personal access token). */
  sessionId?: string;
  /** Present when the caller uses a personal access token: it limits the caller to one organization and these actions. */
  scope?: { tokenId: string; orgId: string; actions: ReadonlySet<Action> };
}

export interface TokenPair {
  access_token: string;
  token_type: 'Bearer';
  expires_in: number; // seconds
  refresh_token: string;
  refresh_expires_in: number; // seconds
}

export interface AuthServiceOptions {
  accessTokenTtlMs: number;
  refreshTokenTtlMs: number;
  /** scrypt cost (log2 N) of the stand-in hash checked when the account does not exist: the cost new hashes get. */
  passwordCost?: number;
}

const issuer = 'fleetwire';
/** Personal access tokens carry a prefix so that they are recognisable (and findable by secret scanners). */
export const patPrefix = 'fwp_';
const refreshPrefix = 'fwr_';

export class AuthService {
  constructor(
    private readonly users: UserRepository,
    private readonly tokens: TokenRepository,
    private readonly sessions: SessionRegistry,
    private readonly keys: ServerKeys,
    private readonly limiter: LoginLimiter,
    private readonly clock: Clock,
    private readonly options: AuthServiceOptions,
    /** Users read for requests (auth/principals.ts); none: each request reads the database. */
    private readonly principals?: PrincipalCache<User, OrgRole>,
  ) {}

  private findUser(id: string): Promise<User | undefined> {
    return this.principals ? this.principals.user(id, () => this.users.findById(id)) : this.users.findById(id);
  }

  /** Email + password login. `address` is the client address, for rate limiting. */
  async login(email: string, password: string, address: string): Promise<TokenPair> {
    const account = normaliseEmail(email);
    const wait = await this.limiter.check(account, address);
    if (wait > 0) throw new AppError('auth.rate_limited', `Too many login attempts; try again in ${Math.ceil(wait / 1000)} s`, { retry_after: Math.ceil(wait / 1000) });
    const user = await this.users.findByEmailWithHash(account);
    const ok = await verifyPassword(password, user?.password_hash ?? (await dummyPasswordHash(this.options.passwordCost)));
    // the attempt is already counted against the account (check); success forgives its failures
    if (!user || !ok) throw new AppError('auth.invalid_credentials', 'Wrong email or password');
    await this.limiter.succeeded(account);
    const sessionId = uuidv7(this.clock.now());
    await this.sessions.start(sessionId, user.id);
    return this.issuePair(user.id, sessionId);
  }

  /** Trades a refresh token for a new pair. Reusing a replaced token revokes its whole family (it may have been stolen). */
  async refresh(refreshToken: string): Promise<TokenPair> {
    const row = await this.tokens.findRefresh(hashToken(refreshToken));
    const now = this.clock.now();
    if (!row) throw new AppError('auth.refresh_token_invalid');
    if (row.revoked_at !== null) {
      await this.endSession(row.family_id);
      throw new AppError('auth.refresh_token_invalid');
    }
    if (Date.parse(row.expires_at) <= now) throw new AppError('auth.refresh_token_invalid');
    if (!(await this.tokens.revokeRefresh(row.id, iso(now)))) throw new AppError('auth.refresh_token_invalid');
    // a session started before sessions were recorded (migration 6) is recorded on its first refresh
    await this.sessions.start(row.family_id, row.user_id);
    return this.issuePair(row.user_id, row.family_id);
  }

  /** Ends the session the refresh token belongs to. Unknown tokens are ignored (logout is idempotent). */
  async logout(refreshToken: string): Promise<void> {
    const row = await this.tokens.findRefresh(hashToken(refreshToken));
    if (row) await this.endSession(row.family_id);
  }

  /** Ends every session of the user (password change, sign-out everywhere): their refresh and access tokens stop working. */
  async revokeSessions(userId: string): Promise<void> {
    await this.tokens.revokeAllRefreshOfUser(userId, iso(this.clock.now()));
    await this.sessions.endAllOf(userId);
  }

  private async endSession(familyId: string): Promise<void> {
    await this.tokens.revokeFamily(familyId, iso(this.clock.now()));
    await this.sessions.end(familyId);
  }

  private async issuePair(userId: string, familyId: string): Promise<TokenPair> {
    const now = this.clock.now();
    const accessTtl = Math.floor(this.options.accessTokenTtlMs / 1000);
    const access = await new SignJWT({ typ: 'access', sid: familyId })
      .setProtectedHeader({ alg: 'HS256' })
      .setIssuer(issuer)
      .setSubject(userId)
      .setJti(uuidv7(now))
      .setIssuedAt(Math.floor(now / 1000))
      .setExpirationTime(Math.floor(now / 1000) + accessTtl)
      .sign(this.keys.jwt);
    const refresh = refreshPrefix + randomToken(32);
    await this.tokens.insertRefresh({
      id: uuidv7(now),
      user_id: userId,
      family_id: familyId,
      token_hash: hashToken(refresh),
      expires_at: iso(now + this.options.refreshTokenTtlMs),
      revoked_at: null,
      created_at: iso(now),
    });
    return { access_token: access, token_type: 'Bearer', expires_in: accessTtl, refresh_token: refresh, refresh_expires_in: Math.floor(this.options.refreshTokenTtlMs / 1000) };
  }

  /** Resolves a Bearer token (access JWT or personal access token) to the caller. */
  async authenticate(token: string): Promise<Principal> {
    if (token.startsWith(patPrefix)) return this.authenticatePat(token);
    let sub: string;
    let sid: string;
    try {
      const { payload } = await jwtVerify(token, this.keys.jwt, { issuer, algorithms: ['HS256'], currentDate: new Date(this.clock.now()) });
      if (payload.typ !== 'access' || typeof payload.sub !== 'string') throw new AppError('auth.token_invalid');
      // tokens from before sessions were recorded carry no session: their holder refreshes once
      if (typeof payload.sid !== 'string') throw new AppError('auth.token_invalid', 'The access token carries no session; refresh it or log in again');
      sub = payload.sub;
      sid = payload.sid;
    } catch (e) {
      if (e instanceof AppError) throw e;
      if (e instanceof joseErrors.JOSEError) throw new AppError('auth.token_invalid', e instanceof joseErrors.JWTExpired ? 'The access token has expired' : 'The access token is invalid');
      throw e;
    }
    const user = await this.findUser(sub);
    if (!user) throw new AppError('auth.token_invalid', 'The user of this token no longer exists');
    if (!(await this.sessions.isLive(sid, sub))) throw new AppError('auth.session_ended');
    return { userId: user.id, email: user.email, platformRole: user.role, sessionId: sid };
  }

  private async authenticatePat(token: string): Promise<Principal> {
    const pat = await this.tokens.findPatByHash(hashToken(token));
    const now = this.clock.now();
    if (!pat || pat.revoked_at !== null || Date.parse(pat.expires_at) <= now) throw new AppError('auth.token_invalid', 'The access token is invalid, expired or revoked');
    const user = await this.findUser(pat.user_id);
    if (!user) throw new AppError('auth.token_invalid');
    // last_used_at is informative: write it at most once a minute per token
    if (!pat.last_used_at || now - Date.parse(pat.last_used_at) > 60_000) await this.tokens.touchPat(pat.id, iso(now));
    return { userId: user.id, email: user.email, platformRole: user.role, scope: { tokenId: pat.id, orgId: pat.org_id, actions: new Set(pat.actions) } };
  }

  /** Creates a personal access token; the token text is returned only here. */
  async createPat(user: Pick<User, 'id'>, input: { name: string; orgId: string; actions: Action[]; expiresAt: number }): Promise<{ token: string; pat: PersonalAccessToken }> {
    const now = this.clock.now();
    if (input.expiresAt <= now) throw new AppError('request.invalid', 'expires_at must be in the future');
    const token = patPrefix + randomToken(32);
    const row = {
      id: uuidv7(now),
      user_id: user.id,
      name: input.name,
      token_hash: hashToken(token),
      org_id: input.orgId,
      actions: [...new Set(input.actions)],
      expires_at: iso(input.expiresAt),
      revoked_at: null,
      last_used_at: null,
      created_at: iso(now),
    };
    await this.tokens.insertPat(row);
    const { token_hash: _, ...pat } = row;
    return { token, pat };
  }

  listPats(userId: string, offset: number, limit: number): Promise<{ total: number; items: PersonalAccessToken[] }> {
    return this.tokens.listPats(userId, offset, limit);
  }

  async revokePat(userId: string, id: string): Promise<void> {
    if (!(await this.tokens.revokePat(userId, id, iso(this.clock.now())))) throw new AppError('token.not_found');
  }
}
