export { Database, jsonColumn, sqliteUrlFor, type DatabaseKind, type DatabaseOptions } from './database.js';
export { migrate, migrations, checksum, MigrationError, type Migration, type MigrationReport } from './migrations.js';
export type { Tables } from './schema.js';
