/**
 * Who pays for evaluation: one organisation of class `research`, '평가 계정 / Evaluation account',
 * made on first use with a key of its own that no one holds (only its hash is random and unknown).
 * Every evaluation call is that key's call, so usage records, the ledger and settlement see it as
 * they see any organisation's. The operator manages it like any other (limits, suspension).
 */
import { randomBytes } from 'node:crypto';
import { hashApiKey } from '../../accounts/api-keys.ts';
import type { Caller } from '../../accounts/key-cache.ts';
import type { AuditLog } from '../../audit/audit-log.ts';
import { ConflictError } from '../../errors.ts';
import type { Database } from '../../storage/database.ts';

export const EVALUATION_ORGANIZATION_ID = 'org_evaluation';
export const EVALUATION_KEY_ID = 'key_evaluation';
export const EVALUATION_ORGANIZATION_NAME = '평가 계정 / Evaluation account';

const number = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));

export class EvaluationAccount {
  constructor(
    private readonly db: Database,
    private readonly auditLog: AuditLog,
  ) {}

  /** Makes the organisation and its key if they are not there yet; safe when replicas race. */
  async ensure(): Promise<void> {
    const now = Date.now();
    await this.db.transaction(async (tx) => {
      const created = await tx.run(
        `INSERT INTO organizations (id, name, class, business_number, status, created_at, updated_at)
         VALUES (?, ?, 'research', NULL, 'active', ?, ?) ON CONFLICT DO NOTHING`,
        [EVALUATION_ORGANIZATION_ID, EVALUATION_ORGANIZATION_NAME, now, now],
      );
      const org = await tx.get('SELECT id FROM organizations WHERE id = ?', [EVALUATION_ORGANIZATION_ID]);
      if (!org)
        throw new ConflictError(
          'organization',
          `an organization named '${EVALUATION_ORGANIZATION_NAME}' exists already: rename it so the evaluation account can be made`,
          `'${EVALUATION_ORGANIZATION_NAME}' 이름의 기관이 이미 있어 평가 계정을 만들 수 없습니다.`,
        );
      await tx.run(
        `INSERT INTO api_keys (id, organization_id, name, prefix, key_hash, allowed_models, created_at)
         VALUES (?, ?, ?, 'eval', ?, NULL, ?) ON CONFLICT DO NOTHING`,
        [
          EVALUATION_KEY_ID,
          EVALUATION_ORGANIZATION_ID,
          '평가 실행 / evaluation runs',
          hashApiKey(randomBytes(32).toString('base64url')),
          now,
        ],
      );
      if (created > 0) {
        await this.auditLog.record(
          {
            actorId: 'system',
            source: 'system',
            action: 'create',
            entityType: 'organization',
            entityId: EVALUATION_ORGANIZATION_ID,
            after: { id: EVALUATION_ORGANIZATION_ID, name: EVALUATION_ORGANIZATION_NAME, class: 'research' },
          },
          tx,
        );
      }
    });
  }

  /** The caller evaluation calls are made as, read afresh (the operator may have changed its limits). */
  async caller(): Promise<Caller> {
    await this.ensure();
    const row = await this.db.get<Record<string, unknown>>(
      `SELECT o.name, o.class, o.status, o.fallback_models, o.max_concurrent_requests,
              o.requests_per_minute AS org_rpm, o.tokens_per_minute AS org_tpm
         FROM organizations o WHERE o.id = ?`,
      [EVALUATION_ORGANIZATION_ID],
    );
    if (row?.status !== 'active')
      throw new ConflictError(
        'organization',
        'the evaluation account is suspended: activate it to run evaluations',
        '평가 계정이 정지되어 있어 평가를 실행할 수 없습니다.',
      );
    const rpm = number(row.org_rpm);
    const tpm = number(row.org_tpm);
    return {
      keyId: EVALUATION_KEY_ID,
      organizationId: EVALUATION_ORGANIZATION_ID,
      organizationName: row.name as string,
      organizationClass: row.class as string,
      allowedModels: null,
      fallbackModels: row.fallback_models
        ? (JSON.parse(row.fallback_models as string) as Record<string, string[]>)
        : null,
      maxConcurrentRequests: number(row.max_concurrent_requests),
      rateLimits:
        rpm === null && tpm === null
          ? null
          : { keyRequests: null, keyTokens: null, organizationRequests: rpm, organizationTokens: tpm },
    };
  }
}
