import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

/** Which engine integration tests run on: `npm test` runs them once per engine. */
export type TestEngine = 'sqlite' | 'postgres';

export function testEngine(): TestEngine {
  return process.env.KAIHUB_TEST_DATABASE === 'postgres' ? 'postgres' : 'sqlite';
}

/** The server tests create their databases on (trust auth, as on the dev machines and CI). */
export const POSTGRES_ADMIN_URL =
  process.env.KAIHUB_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

export interface TestDatabase {
  /** What KAIHUB_DATABASE is set to. */
  location: string;
  dataDir: string;
  drop(): Promise<void>;
}

/** A fresh, empty database of the engine under test, dropped again by `drop()`. */
export async function createTestDatabase(engine: TestEngine = testEngine()): Promise<TestDatabase> {
  const dataDir = mkdtempSync(join(tmpdir(), 'kaihub-test-'));
  if (engine === 'sqlite') {
    return {
      location: join(dataDir, 'hub.sqlite'),
      dataDir,
      async drop() {
        rmSync(dataDir, { recursive: true, force: true });
      },
    };
  }
  const name = `kaihub_test_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: POSTGRES_ADMIN_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(POSTGRES_ADMIN_URL);
  url.pathname = `/${name}`;
  return {
    location: url.toString(),
    dataDir,
    async drop() {
      const c = new pg.Client({ connectionString: POSTGRES_ADMIN_URL });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
