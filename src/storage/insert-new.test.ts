import assert from 'node:assert/strict';
import { test } from 'node:test';
import { insertNew } from './insert-new.ts';
import { openSqlite } from './sqlite.ts';

test('insertNew on SQLite: every key when all are new, only the new ones on a replay, the rows own errors thrown', async () => {
  const db = openSqlite(':memory:');
  try {
    await db.exec('CREATE TABLE t (k TEXT PRIMARY KEY, n INTEGER NOT NULL CHECK (n >= 0))');
    const insert = (rows: number) =>
      `INSERT INTO t (k, n) VALUES ${new Array(rows).fill('(?, ?)').join(', ')}`;
    const put = (rows: [string, number][]) =>
      db.transaction((tx) =>
        insertNew(
          tx,
          'sqlite',
          'k',
          insert(rows.length),
          rows.flat(),
          rows.map(([k]) => k),
        ),
      );

    assert.deepEqual(
      await put([
        ['a', 1],
        ['b', 2],
      ]),
      ['a', 'b'],
    );
    // a replay of b beside a new c: the plain insert fails as a whole, the skipping one adds c alone
    assert.deepEqual(
      await put([
        ['b', 20],
        ['c', 3],
      ]),
      ['c'],
    );
    assert.deepEqual(
      await put([
        ['a', 1],
        ['c', 3],
      ]),
      [],
    );
    const rows = await db.all<{ k: string; n: number }>('SELECT k, n FROM t ORDER BY k');
    assert.deepEqual(
      rows.map((r) => [r.k, Number(r.n)]),
      [
        ['a', 1],
        ['b', 2],
        ['c', 3],
      ],
      'nothing replaced, nothing doubled',
    );
    // a row the table refuses for its own value still fails, and the others of its statement stay out
    await assert.rejects(
      put([
        ['d', 4],
        ['e', -1],
      ]),
      /CHECK/,
    );
    assert.equal((await db.get<{ n: number }>('SELECT COUNT(*) AS n FROM t'))!.n, 3);
  } finally {
    await db.close();
  }
});
