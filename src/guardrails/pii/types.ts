/**
 * The personal data the Korean PII guardrail finds. The type names are part of the public API
 * (`POST /v1/guardrails/check`, policy findings, audit and usage records): never rename one.
 */
export const PII_TYPES = [
  'rrn',
  'foreigner_rrn',
  'passport',
  'driver_license',
  'business_registration',
  'corporate_registration',
  'phone',
  'email',
  'card',
  'bank_account',
  'health_insurance',
] as const;

export type PiiType = (typeof PII_TYPES)[number];

/** One finding: offsets in UTF-16 code units (as JavaScript strings count), `end` exclusive. */
export interface PiiFinding {
  type: PiiType;
  start: number;
  end: number;
}

/** What a masked value becomes: Korean first, as the upstream model and the client read it. */
export const PII_LABELS: Readonly<Record<PiiType, string>> = {
  rrn: '주민등록번호',
  foreigner_rrn: '외국인등록번호',
  passport: '여권번호',
  driver_license: '운전면허번호',
  business_registration: '사업자등록번호',
  corporate_registration: '법인등록번호',
  phone: '전화번호',
  email: '이메일',
  card: '카드번호',
  bank_account: '계좌번호',
  health_insurance: '건강보험번호',
};
