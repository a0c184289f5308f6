import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PRODUCT_COLUMNS, toProduct } from '../../src/catalog/catalog-records.ts';
import { openDatabase } from '../../src/storage/database.ts';
import { migrate, migrations } from '../../src/storage/migrator.ts';
import { createTestDatabase } from '../helpers/databases.ts';

test('migrations 010–012 apply to a database in use before them, keeping its rows', async () => {
  const database = await createTestDatabase();
  const db = await openDatabase(database.location);
  try {
    const before = migrations.filter((m) => m.id < '010');
    await migrate(db, before);
    const now = Date.now();
    await db.run(
      `INSERT INTO suppliers (id, name, status, created_at, updated_at) VALUES ('sup_old', '기존 공급기업', 'active', ?, ?)`,
      [now, now],
    );
    await db.run(
      `INSERT INTO products (id, supplier_id, model, display_name, purposes, modality, context_window,
         price_input_micro_per_1m, price_output_micro_per_1m, residency, status, created_at, updated_at)
       VALUES ('prd_old', 'sup_old', 'old-model', 'Old', '["chat"]', 'text', 4096, 1000000, 2000000, 'domestic', 'active', ?, ?)`,
      [now, now],
    );

    const applied = await migrate(db);
    assert.deepEqual(
      applied,
      migrations.filter((m) => m.id >= '010').map((m) => m.id),
    );
    const product = toProduct(
      (await db.get(`SELECT ${PRODUCT_COLUMNS} FROM products WHERE id = 'prd_old'`))!,
    );
    assert.equal(product.priceInputPer1M, '1');
    assert.equal(product.priceReference, null);
    assert.equal(product.suggestedDeployment, null);
    for (const table of ['users', 'memberships', 'personal_access_tokens', 'audit_log'])
      assert.deepEqual(await db.all(`SELECT * FROM ${table}`), [], table);
    await db.run(
      `INSERT INTO audit_log (id, created_at, actor_id, source, action, entity_type, entity_id)
       VALUES ('aud_1', ?, 'system', 'system', 'create', 'supplier', 'sup_old')`,
      [now],
    );
    await assert.rejects(db.run('DELETE FROM audit_log'), /append-only/);
  } finally {
    await db.close();
    await database.drop();
  }
});
