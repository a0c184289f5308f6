import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { AuditLog } from '../audit/audit-log.ts';
import { ValidationError } from '../errors.ts';
import type { Database } from '../storage/database.ts';
import { type CatalogFile, parseCatalogFile } from './catalog-file.ts';
import { type ImportReport, importCatalog } from './catalog-import.ts';

/** The Korean suppliers' public products, shipped with the hub: data, reviewed like code. */
export const SHIPPED_CATALOG_PATH = fileURLToPath(new URL('./seed/catalog.json', import.meta.url));

/** Set once per database: the first start decided whether to seed, and no later start asks again. */
const SEEDED_SETTING = 'catalog_seeded';

/** Reads and validates a catalogue file; a problem is a ValidationError naming the file and the field. */
export function readCatalogFile(path: string): CatalogFile {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw ValidationError.of('(file)', `${path}: ${(error as Error).message}`);
  }
  return parseCatalogFile(json);
}

/**
 * The first start on a new database fills the empty catalogue from `path`: suppliers and products,
 * listed but not callable until the operator adds a deployment with a key. A database whose
 * catalogue already has suppliers (a hub upgraded to this version) is left as it is. Replicas starting
 * together seed once: the marker row and the import share one transaction.
 */
export async function seedCatalogOnce(
  db: Database,
  path: string,
  auditLog: AuditLog,
): Promise<ImportReport | undefined> {
  const file = readCatalogFile(path);
  return db.transaction(async (tx) => {
    const now = Date.now();
    const decided = await tx.run(
      'INSERT INTO settings (key, value, updated_at) VALUES (?, ?, ?) ON CONFLICT (key) DO NOTHING',
      [SEEDED_SETTING, `seeded from ${path} (${file.generatedAt})`, now],
    );
    if (decided === 0) return undefined;
    if (await tx.get('SELECT id FROM suppliers LIMIT 1')) {
      await tx.run('UPDATE settings SET value = ? WHERE key = ?', [
        'not seeded: the catalogue was not empty',
        SEEDED_SETTING,
      ]);
      return undefined;
    }
    return importCatalog(tx, file, { overwrite: false, dryRun: false }, (entry) =>
      auditLog.record({ actorId: 'system', source: 'system', action: 'seed', ...entry }, tx),
    );
  });
}
