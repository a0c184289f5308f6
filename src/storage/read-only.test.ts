import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isReadOnlySql } from './read-only.ts';

test('reads are told from writes by their text, and a WITH by what it names', () => {
  for (const sql of [
    'SELECT 1',
    '  select n FROM t',
    'PRAGMA user_version',
    'WITH x AS (SELECT n FROM t) SELECT * FROM x',
    '\n  with recursive r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 3) SELECT n FROM r',
  ])
    assert.equal(isReadOnlySql(sql), true, sql);
  for (const sql of [
    'INSERT INTO t (n) VALUES (1) RETURNING n',
    'UPDATE t SET n = 2 RETURNING n',
    'DELETE FROM t RETURNING n',
    'REPLACE INTO t (n) VALUES (3)',
    'WITH added AS (INSERT INTO t (n) VALUES (4) RETURNING n) SELECT n FROM added',
    'WITH x AS (SELECT 5 AS n) INSERT INTO t (n) SELECT n FROM x',
    'WITH x AS (SELECT 6 AS n) update t SET n = 7',
    'CREATE TABLE u (n INTEGER)',
    'BEGIN',
  ])
    assert.equal(isReadOnlySql(sql), false, sql);
  // unsure is a write: a read that names a writing verb waits for a lock it did not need, no more
  assert.equal(isReadOnlySql("WITH x AS (SELECT 'UPDATE' AS word) SELECT word FROM x"), false);
});
