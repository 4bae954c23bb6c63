// Writes prisma/migrations/<timestamp>_<name>/migration.sql with the SQL that takes the committed
// migrations to prisma/schema.prisma. Needs a scratch PostgreSQL database in DATABASE_URL, which the
// schema engine uses as its shadow database.
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';

import { diffSchemaAgainstMigrations, migrationsDir } from '../src/store/migrate.ts';

const name = process.argv[2];
const connectionString = process.env.DATABASE_URL;
if (!name || !/^[a-z0-9_]+$/.test(name)) {
  console.error('usage: npm run db:new-migration -- <name in lower_snake_case>');
  process.exit(2);
}
if (!connectionString) {
  console.error('DATABASE_URL is missing: set it to a scratch PostgreSQL database');
  process.exit(2);
}

const sql = await diffSchemaAgainstMigrations({ connectionString });
if (sql.trim() === '' || sql.includes('This is an empty migration')) {
  console.log('schema.prisma matches the committed migrations; nothing written');
  process.exit(0);
}

const stamp = new Date().toISOString().replace(/\D/g, '').slice(0, 14);
const folder = path.join(migrationsDir, `${stamp}_${name}`);
await mkdir(folder, { recursive: true });
await writeFile(path.join(folder, 'migration.sql'), sql);
await writeFile(path.join(migrationsDir, 'migration_lock.toml'), 'provider = "postgresql"\n');
console.log(`wrote ${path.relative(process.cwd(), folder)}/migration.sql`);
