// What the usage benchmarks apply records against: a supplier, a product and an organisation, and on
// request a programme's voucher with co-payment; and a usage record as the hub journals one.
import type { AuditTrail } from '../src/audit/audit-log.ts';
import { ProgrammeService } from '../src/billing/programmes.ts';
import type { UsageRecord } from '../src/billing/usage-journal.ts';
import type { Database } from '../src/storage/database.ts';

/** Seeds the accounts records are charged to (a migrated, empty database); the voucher's id, or null. */
export async function seedUsageAccounts(
  db: Database,
  { voucher }: { voucher: boolean },
): Promise<string | null> {
  const now = Date.now();
  await db.run(
    `INSERT INTO suppliers (id, name, status, created_at, updated_at) VALUES ('sup', 'S', 'active', ?, ?)`,
    [now, now],
  );
  await db.run(
    `INSERT INTO products (id, supplier_id, model, display_name, purposes, modality, context_window,
       price_input_micro_per_1m, price_output_micro_per_1m, residency, status, created_at, updated_at)
     VALUES ('prd', 'sup', 'm', 'm', '["chat"]', 'text', 8192, 1, 1, 'domestic', 'active', ?, ?)`,
    [now, now],
  );
  await db.run(
    `INSERT INTO organizations (id, name, class, status, created_at, updated_at) VALUES ('org', 'o', 'sme', 'active', ?, ?)`,
    [now, now],
  );
  if (!voucher) return null;
  const noTrail: AuditTrail = async () => {};
  const programmes = new ProgrammeService(db);
  const programme = await programmes.create(
    {
      name: 'bench',
      startsOn: '2026-01-01',
      endsOn: '2099-12-31',
      budgetKrw: '100000000',
      copayPercent: { sme: 20 },
      onExhausted: 'self-pay',
    },
    noTrail,
    'bench',
  );
  const issued = await programmes.issueVoucher(
    programme.id,
    { organizationId: 'org', amountKrw: '50000000' },
    noTrail,
    'bench',
  );
  return issued.id;
}

/** A served chat call's record, charged to the seeded organisation (through `voucherId`, if any). */
export function usageRecord(requestId: string, voucherId: string | null): UsageRecord {
  return {
    requestId,
    createdAtMs: Date.now(),
    organizationId: 'org',
    apiKeyId: 'key',
    productId: 'prd',
    deploymentId: 'dep',
    model: 'm',
    endpoint: 'chat.completions',
    stream: false,
    status: 'ok',
    httpStatus: 200,
    errorCode: null,
    promptTokens: 20,
    completionTokens: 10,
    usageSource: 'upstream',
    priceInputMicroPer1M: 1_000_000_000n,
    priceOutputMicroPer1M: 3_000_000_000n,
    costMicroKrw: 50_000n,
    latencyMs: 1,
    ttftMs: null,
    usageNote: null,
    voucherId,
  };
}
