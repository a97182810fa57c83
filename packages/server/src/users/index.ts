export { UserRepository, type User, type PlatformRole } from './repository.js';
export { UserService, normaliseEmail, type NewUser } from './service.js';
