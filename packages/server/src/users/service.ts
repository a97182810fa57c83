import { AppError } from '../core/errors.js';
import { iso, type Clock } from '../core/clock.js';
import { uuidv7 } from '../core/ids.js';
import { hashPassword, verifyPassword } from './passwords.js';
import type { PlatformRole, User, UserRepository } from './repository.js';

export interface NewUser {
  email: string;
  password: string;
  name?: string;
  role?: PlatformRole;
}

export interface UserServiceOptions {
  passwordMinLength: number;
  /** scrypt cost (log2 N) of new password hashes (FLEETWIRE_PASSWORD_HASH_COST); existing hashes keep theirs. */
  passwordCost?: number;
  /** Called after a password change so that sessions can be ended. */
  onPasswordChanged?: (userId: string) => Promise<void>;
  /** Called after a user changed or was deleted (with their memberships), so that caches drop them. */
  onChanged?: (userId: string) => void;
}

export function normaliseEmail(email: string): string {
  return email.trim().toLowerCase();
}

export class UserService {
  constructor(
    private readonly repo: UserRepository,
    private readonly clock: Clock,
    private readonly options: UserServiceOptions,
  ) {}

  checkPassword(password: string): void {
    if (password.length < this.options.passwordMinLength) throw new AppError('user.weak_password', `The password must be at least ${this.options.passwordMinLength} characters long`);
    if (Buffer.byteLength(password) > 1024) throw new AppError('user.weak_password', 'The password must be at most 1024 bytes long');
  }

  async create(input: NewUser): Promise<User> {
    this.checkPassword(input.password);
    const now = iso(this.clock.now());
    const row = {
      id: uuidv7(this.clock.now()),
      email: normaliseEmail(input.email),
      name: input.name ?? '',
      password_hash: await hashPassword(input.password, this.options.passwordCost),
      role: input.role ?? 'user',
      created_at: now,
      updated_at: now,
    };
    if (!(await this.repo.insert(row))) throw new AppError('user.email_taken');
    const { password_hash: _, ...user } = row;
    return user;
  }

  async get(id: string): Promise<User> {
    const user = await this.repo.findById(id);
    if (!user) throw new AppError('user.not_found');
    return user;
  }

  async findByEmail(email: string): Promise<User | undefined> {
    const u = await this.repo.findByEmailWithHash(normaliseEmail(email));
    if (!u) return undefined;
    const { password_hash: _, ...user } = u;
    return user;
  }

  list(offset: number, limit: number, email?: string): Promise<{ total: number; items: User[] }> {
    return this.repo.list(offset, limit, email === undefined ? undefined : normaliseEmail(email));
  }

  async update(id: string, patch: { name?: string; role?: PlatformRole }): Promise<User> {
    const user = await this.repo.update(id, patch, iso(this.clock.now()));
    if (!user) throw new AppError('user.not_found');
    this.options.onChanged?.(id);
    return user;
  }

  async changePassword(id: string, current: string, next: string): Promise<void> {
    const hash = await this.repo.findHashById(id);
    if (!hash) throw new AppError('user.not_found');
    if (!(await verifyPassword(current, hash))) throw new AppError('user.wrong_password');
    await this.setPassword(id, next);
  }

  /** Sets a password without knowing the old one (platform admin, CLI). */
  async setPassword(id: string, password: string): Promise<void> {
    this.checkPassword(password);
    const user = await this.repo.update(id, { password_hash: await hashPassword(password, this.options.passwordCost) }, iso(this.clock.now()));
    if (!user) throw new AppError('user.not_found');
    this.options.onChanged?.(id);
    await this.options.onPasswordChanged?.(id);
  }

  async delete(id: string): Promise<void> {
    if (!(await this.repo.delete(id))) throw new AppError('user.not_found');
    this.options.onChanged?.(id);
  }

  /** Creates the first platform admin from configuration unless a user with that email exists. */
  async ensureAdmin(email: string, password: string): Promise<{ created: boolean; user: User }> {
    const existing = await this.findByEmail(email);
    if (existing) return { created: false, user: existing };
    const user = await this.create({ email, password, role: 'admin', name: 'Administrator' });
    return { created: true, user };
  }
}
