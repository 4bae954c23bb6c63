import { readFile, readdir } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { PrismaPg } from '@prisma/adapter-pg';
import { bindMigrationAwareSqlAdapterFactory } from '@prisma/driver-adapter-utils';
import type { MigrationList, SchemaEngine } from '@prisma/schema-engine-wasm';
import pg from 'pg';

const projectRoot = fileURLToPath(new URL('../..', import.meta.url));
export const prismaSchemaPath = path.join(projectRoot, 'prisma', 'schema.prisma');
export const migrationsDir = path.join(projectRoot, 'prisma', 'migrations');

export interface MigrationTarget {
  connectionString: string;
  /** PostgreSQL schema to migrate; the connection's default schema when omitted. */
  schema?: string;
}

type SchemaEngineModule = typeof import('@prisma/schema-engine-wasm');

let engineModule: Promise<SchemaEngineModule> | undefined;

/**
 * Loads Prisma's WebAssembly schema engine. Its package imports the `.wasm` file as an ES module,
 * which Node.js 20 allows only behind `--experimental-wasm-modules`, so the module is instantiated
 * here from its bytes and handed to the generated bindings instead.
 */
function loadEngineModule(): Promise<SchemaEngineModule> {
  engineModule ??= (async () => {
    const require = createRequire(import.meta.url);
    const bindingsPath = require.resolve('@prisma/schema-engine-wasm/schema_engine_bg');
    const bindings = (await import(bindingsPath)) as SchemaEngineModule & { __wbg_set_wasm(exports: WebAssembly.Exports): void };
    const bytes = await readFile(path.join(path.dirname(bindingsPath), 'schema_engine_bg.wasm'));
    const { instance } = await WebAssembly.instantiate(bytes, { './schema_engine_bg.js': bindings as unknown as WebAssembly.ModuleImports });
    bindings.__wbg_set_wasm(instance.exports);
    (instance.exports.__wbindgen_start as () => void)();
    return bindings;
  })();
  return engineModule;
}

interface ScriptAdapter {
  executeScript(script: string): Promise<void>;
  underlyingDriver(): { query(text: string): Promise<unknown> };
  onError(error: unknown): never;
}

/**
 * The pg adapter runs a migration script by splitting it on semicolons, which breaks dollar-quoted
 * function bodies (triggers). PostgreSQL's simple query protocol takes the whole script at once.
 */
function wholeScriptAdapter<T>(adapter: T): T {
  const scriptAdapter = adapter as unknown as ScriptAdapter;
  scriptAdapter.executeScript = async (script: string) => {
    try {
      await scriptAdapter.underlyingDriver().query(script);
    } catch (error) {
      scriptAdapter.onError(error);
    }
  };
  return adapter;
}

function pgFactory(pool: pg.Pool, schema: string | undefined) {
  const base = new PrismaPg(pool, schema ? { schema } : undefined);
  return {
    provider: base.provider as 'postgres',
    adapterName: base.adapterName,
    connect: async () => wholeScriptAdapter(await base.connect()),
    connectToShadowDb: async () => wholeScriptAdapter(await base.connectToShadowDb()),
  };
}

/** Runs `work` with a schema engine whose connections are closed afterwards. */
async function withEngine<T>(target: MigrationTarget, log: (message: string) => void, work: (engine: SchemaEngine) => Promise<T>): Promise<T> {
  const { SchemaEngine } = await loadEngineModule();
  const datamodel = await readFile(prismaSchemaPath, 'utf8');
  const pool = new pg.Pool({ connectionString: target.connectionString, max: 2 });
  const adapter = bindMigrationAwareSqlAdapterFactory(pgFactory(pool, target.schema));
  const engine = await SchemaEngine.new({ datamodels: [[prismaSchemaPath, datamodel]] }, log, adapter);
  try {
    return await work(engine);
  } finally {
    engine.free();
    await pool.end();
  }
}

/** Reads `prisma/migrations/*` in the form the schema engine expects. */
export async function readMigrationList(): Promise<MigrationList> {
  const entries = await readdir(migrationsDir, { withFileTypes: true }).catch(() => []);
  const directories = entries.filter((entry) => entry.isDirectory()).map((entry) => entry.name).sort();
  const lockfilePath = path.join(migrationsDir, 'migration_lock.toml');
  const lockfile = await readFile(lockfilePath, 'utf8').catch(() => undefined);

  return {
    baseDir: migrationsDir,
    lockfile: { path: 'migration_lock.toml', content: lockfile ?? null },
    shadowDbInitScript: '',
    migrationDirectories: await Promise.all(
      directories.map(async (name) => ({
        path: name,
        migrationFile: {
          path: 'migration.sql',
          content: { tag: 'ok' as const, value: await readFile(path.join(migrationsDir, name, 'migration.sql'), 'utf8') },
        },
      })),
    ),
  };
}

const noFilters = { externalTables: [], externalEnums: [] };

/**
 * Applies every pending migration and records it in `_prisma_migrations`, as `prisma migrate deploy`
 * does. Returns the names of the migrations applied by this call.
 */
export async function applyMigrations(target: MigrationTarget, log: (message: string) => void = () => {}): Promise<string[]> {
  const migrationsList = await readMigrationList();
  return withEngine(target, log, async (engine) => {
    const { appliedMigrationNames } = await engine.applyMigrations({ migrationsList, filters: noFilters });
    return appliedMigrationNames;
  });
}

/**
 * Returns the SQL that takes a database from the `previous` datamodel (empty when undefined) to
 * `prisma/schema.prisma`. Comparing two datamodels needs no shadow database: introspecting one
 * fails on PostgreSQL 15 with this engine build ("Column type 'char' could not be deserialized").
 */
export async function diffSchema(target: MigrationTarget, previous: string | undefined): Promise<string> {
  const datamodel = await readFile(prismaSchemaPath, 'utf8');
  const from = previous === undefined ? { tag: 'empty' as const } : { tag: 'schemaDatamodel' as const, files: [{ path: prismaSchemaPath, content: previous }] };
  const result = await withEngine(target, () => {}, (engine) =>
    engine.diff({
      from,
      to: { tag: 'schemaDatamodel', files: [{ path: prismaSchemaPath, content: datamodel }] },
      script: true,
      exitCode: null,
      filters: noFilters,
    }),
  );
  return result.stdout ?? '';
}
