// Applies pending migrations to DATABASE_URL through Prisma's WebAssembly schema engine, recording
// them in _prisma_migrations exactly as `prisma migrate deploy` does. Needs no Prisma binaries host.
import { applyMigrations } from '../src/store/migrate.ts';

const connectionString = process.env.DATABASE_URL;
if (!connectionString) {
  console.error('DATABASE_URL is missing: set it to the PostgreSQL database to migrate (embedded mode migrates on `npm start`)');
  process.exit(2);
}

try {
  const applied = await applyMigrations({ connectionString });
  console.log(applied.length > 0 ? `applied ${applied.length} migration(s): ${applied.join(', ')}` : 'no pending migrations');
} catch (error) {
  console.error(`migration failed: ${(error as Error).message}`);
  process.exit(1);
}
