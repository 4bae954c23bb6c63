import type { Services } from '../services.ts';
import { readMigrationList } from './migrate.ts';

export interface Readiness {
  ready: boolean;
  postgres: 'ok' | 'unreachable' | 'migrations_pending';
  redis: 'ok' | 'unreachable' | 'embedded';
}

/** PostgreSQL reachable with every committed migration applied, and Redis reachable. */
export async function readinessOf(services: Services): Promise<Readiness> {
  let postgres: Readiness['postgres'] = 'ok';
  try {
    const rows = await services.database.prisma.$queryRaw<Array<{ name: string }>>`SELECT migration_name AS name FROM _prisma_migrations WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL`;
    const applied = new Set(rows.map((row) => row.name));
    const committed = (await readMigrationList()).migrationDirectories.map((directory) => directory.path);
    if (committed.some((name) => !applied.has(name))) postgres = 'migrations_pending';
  } catch {
    postgres = 'unreachable';
  }

  let redis: Readiness['redis'] = 'embedded';
  if (services.state.kind === 'redis') redis = (await services.state.ping()) ? 'ok' : 'unreachable';

  return { ready: postgres === 'ok' && redis !== 'unreachable', postgres, redis };
}
