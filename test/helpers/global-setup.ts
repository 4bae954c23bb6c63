import pg from 'pg';

import { testDatabaseUrl } from './env.ts';

/** Creates the test database when it is missing; each test file then works in a schema of its own. */
export default async function setup(): Promise<void> {
  const url = new URL(testDatabaseUrl);
  const database = decodeURIComponent(url.pathname.slice(1));
  url.pathname = '/postgres';
  const client = new pg.Client({ connectionString: url.toString() });
  await client.connect();
  try {
    const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
    if (rowCount === 0) await client.query(`CREATE DATABASE "${database.replace(/"/g, '')}"`);
  } finally {
    await client.end();
  }
}
