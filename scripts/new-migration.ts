// Writes prisma/migrations/<timestamp>_<name>/migration.sql with the SQL that takes the schema.prisma
// of the last commit to the one in the working tree. Commit schema.prisma together with its migration,
// so the committed schema always matches the committed migrations.
import { execFileSync } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';

import { diffSchema, migrationsDir, readMigrationList } from '../src/store/migrate.ts';

const name = process.argv[2];
if (!name || !/^[a-z0-9_]+$/.test(name)) {
  console.error('usage: npm run db:new-migration -- <name in lower_snake_case>');
  process.exit(2);
}

const hasMigrations = (await readMigrationList()).migrationDirectories.length > 0;
const previous = hasMigrations ? execFileSync('git', ['show', 'HEAD:prisma/schema.prisma'], { encoding: 'utf8' }) : undefined;
// The engine connects once to learn the server version; comparing two datamodels changes nothing there.
const sql = await diffSchema({ connectionString: process.env.DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres' }, previous);
if (sql.trim() === '' || sql.includes('This is an empty migration')) {
  console.log('schema.prisma matches the last commit; nothing written');
  process.exit(0);
}

const stamp = new Date().toISOString().replace(/\D/g, '').slice(0, 14);
const folder = path.join(migrationsDir, `${stamp}_${name}`);
await mkdir(folder, { recursive: true });
await writeFile(path.join(folder, 'migration.sql'), sql);
await writeFile(path.join(migrationsDir, 'migration_lock.toml'), 'provider = "postgresql"\n');
console.log(`wrote ${path.relative(process.cwd(), folder)}/migration.sql`);
