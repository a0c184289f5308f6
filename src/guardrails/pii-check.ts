import { detectPii, maskPii } from './pii/detect.ts';
import type { PiiFinding } from './pii/types.ts';

export interface PiiCheck {
  findings: PiiFinding[];
  masked: string;
}

/** What `POST /v1/guardrails/check` answers: every type found (UTF-16 offsets) and the masked text. */
export function checkPii(text: string): PiiCheck {
  const findings = detectPii(text);
  return {
    findings: findings.map((f) => ({ type: f.type, start: f.start, end: f.end })),
    masked: findings.length === 0 ? text : maskPii(text, findings),
  };
}
