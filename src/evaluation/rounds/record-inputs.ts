import { z } from 'zod';
import { modelName, slug } from './definition.ts';

/** What may be recorded for an open round (round-records.ts checks each against the round's definition). */

const id = z.string().min(1).max(100);
const finite = z.number().finite();
const note = z.string().trim().min(1).max(4000);
const sha256Hex = z.string().regex(/^[0-9a-f]{64}$/, 'a SHA-256 in lowercase hex');

export const referencesInput = z.strictObject({
  references: z
    .array(
      z.strictObject({
        suiteId: slug,
        model: modelName,
        score: finite.positive().optional(),
        stderr: finite.min(0).optional(),
        n: z.number().int().positive().optional(),
        source: z.enum(['measured', 'published']),
        /** measured: the run through the hub that measured it. */
        runId: id.optional(),
        /** published: where the figure is printed, and how it was measured. */
        citation: note.optional(),
        url: z
          .url({ protocol: /^https?$/ })
          .max(2000)
          .optional(),
        protocol: note.optional(),
        suiteHash: sha256Hex.optional(),
      }),
    )
    .min(1)
    .max(200),
});

export const scoresInput = z.strictObject({
  scores: z
    .array(
      z.strictObject({
        organizationId: id,
        suiteId: slug,
        score: finite.min(0).optional(),
        stderr: finite.min(0).optional(),
        n: z.number().int().positive().optional(),
        unparsed: z.number().int().min(0).optional(),
        suiteHash: sha256Hex.optional(),
        runId: id.optional(),
        note: note.optional(),
      }),
    )
    .min(1)
    .max(500),
});

export const membersInput = z.strictObject({
  members: z
    .array(
      z.strictObject({
        axisId: slug,
        name: z.string().trim().min(1).max(200),
        userId: id.optional(),
        /** Teams (organisation ids) this member has a conflict of interest with. */
        conflicts: z.array(id).max(100).default([]),
      }),
    )
    .min(1)
    .max(500),
});

export const memberUpdate = z.strictObject({
  name: z.string().trim().min(1).max(200).optional(),
  conflicts: z.array(id).max(100).optional(),
});

export const panelScoresInput = z.strictObject({
  scores: z
    .array(
      z.strictObject({
        memberId: id,
        organizationId: id,
        scores: z.record(slug, finite.min(0)),
        comment: note.optional(),
      }),
    )
    .min(1)
    .max(2000),
});

export const gateDecisionsInput = z.strictObject({
  decisions: z
    .array(
      z.strictObject({
        gateId: slug,
        organizationId: id,
        passed: z.boolean(),
        evidence: note,
        reason: note,
      }),
    )
    .min(1)
    .max(200),
});
