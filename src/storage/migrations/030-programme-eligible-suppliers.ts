import type { Migration } from '../migrator.ts';

/**
 * A programme may name the suppliers whose products its vouchers pay for (`eligibleSupplierIds`), next
 * to the products it may already name: a JSON array of supplier ids, NULL for every supplier. Existing
 * programmes stay NULL, so what their vouchers cover does not change.
 */
export const migration030ProgrammeEligibleSuppliers: Migration = {
  id: '030-programme-eligible-suppliers',
  statements: ['ALTER TABLE programmes ADD COLUMN eligible_suppliers TEXT'],
};
