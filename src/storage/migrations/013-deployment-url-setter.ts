import type { Migration } from '../migrator.ts';

/**
 * Who last set a deployment's base URL: `operator` (trusted as it is: a local model, vLLM next to the
 * hub) or `supplier_admin` (the hub connects only to public addresses and the networks the operator
 * allows: providers/network.ts). Deployments made before people and roles were the operator's.
 */
export const migration013DeploymentUrlSetter: Migration = {
  id: '013-deployment-url-setter',
  statements: [
    `ALTER TABLE deployments ADD COLUMN base_url_set_by TEXT NOT NULL DEFAULT 'operator'
       CHECK (base_url_set_by IN ('operator', 'supplier_admin'))`,
  ],
};
