/**
 * A suite file (YAML or JSON): the data file and its official format, and a small task spec — the
 * prompt template, few-shot, generation parameters, answer extraction, and the judge for judged
 * suites. docs/evaluation.md documents every field.
 */
import { z } from 'zod';
import { ValidationError } from '../../errors.ts';
import { parseInput } from '../../validation.ts';
import { DATA_FORMAT_NAMES, dataFormat } from './formats/registry.ts';
import { SUITE_KINDS, type SuiteKind } from './items.ts';

const dataSource = z.strictObject({
  /** A path, relative to the suite file (the CLI only: the hub reads no file a request names). */
  file: z.string().min(1).max(1000).optional(),
  /** The file's text itself (what the admin API takes). */
  content: z
    .string()
    .max(64 * 1024 * 1024)
    .optional(),
});

/** The sampling fields a suite may set; the hub passes them to the product as any client's would be. */
export const callParameters = z.strictObject({
  temperature: z.number().min(0).max(2).optional(),
  top_p: z.number().gt(0).max(1).optional(),
  max_tokens: z.number().int().min(1).max(65_536).optional(),
  seed: z
    .number()
    .int()
    .min(0)
    .max(2 ** 31 - 1)
    .optional(),
  stop: z.array(z.string().min(1).max(64)).max(4).optional(),
});
export type CallParameters = z.infer<typeof callParameters>;

export const NORMALIZERS = [
  'trim',
  'lowercase',
  'strip_commas',
  'strip_punctuation',
  'collapse_spaces',
] as const;
export type Normalizer = (typeof NORMALIZERS)[number];

const scale = z
  .strictObject({ min: z.number().int().min(0).max(100), max: z.number().int().min(1).max(100) })
  .refine((s) => s.max > s.min, { message: 'max must be above min', path: ['max'] });

export const suiteSpecSchema = z.strictObject({
  name: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/, 'letters, digits, ".", "_" and "-", at most 100'),
  description: z.string().max(2000).optional(),
  /** Implied by the data format; when given it must agree. */
  kind: z.enum(SUITE_KINDS).optional(),
  data: dataSource.extend({
    format: z.enum(DATA_FORMAT_NAMES as [string, ...string[]]),
    /** The category of every item, for files that carry none (one HAE-RAE file per category). */
    category: z.string().trim().min(1).max(200).optional(),
  }),
  /** Seeds the few-shot sampler and the bootstrap; recorded in the manifest. */
  seed: z
    .number()
    .int()
    .min(0)
    .max(2 ** 31 - 1)
    .default(0),
  fewShot: dataSource.extend({ k: z.number().int().min(0).max(32) }).optional(),
  prompt: z
    .strictObject({
      /** `chat`: each few-shot example is a user turn and an assistant turn; `single`: one user message. */
      style: z.enum(['chat', 'single']).default('chat'),
      system: z.string().max(20_000).nullable().optional(),
      template: z.string().min(1).max(20_000).optional(),
      /** How a few-shot example's answer is written (`{answer}`). */
      answerTemplate: z.string().min(1).max(2_000).optional(),
    })
    .optional(),
  parameters: callParameters.optional(),
  /** Generation suites: how the answer is taken out of the model's text. */
  extraction: z
    .strictObject({
      type: z.enum(['numeric', 'regex', 'exact']),
      pattern: z.string().min(1).max(2_000).optional(),
      flags: z
        .string()
        .regex(/^[imsu]*$/, 'only i, m, s and u')
        .optional(),
      group: z.number().int().min(0).max(20).optional(),
      normalizers: z.array(z.enum(NORMALIZERS)).max(10).optional(),
      /** Numeric answers: the relative difference still counted as equal. */
      tolerance: z.number().min(0).max(1).optional(),
    })
    .optional(),
  /** Judged suites: the product that judges, and how. */
  judge: z
    .strictObject({
      model: z.string().min(1).max(128),
      rubric: z.string().max(20_000).optional(),
      scale: scale.optional(),
      system: z.string().max(20_000).optional(),
      template: z.string().min(1).max(20_000).optional(),
      parameters: callParameters.optional(),
    })
    .optional(),
  /** Only the first N items (a quick check of a large suite); recorded in the hash. */
  limit: z.number().int().min(1).max(10_000_000).optional(),
});

export type SuiteSpec = z.infer<typeof suiteSpecSchema>;

/**
 * The spec, checked as a whole: what the schema cannot say alone (the kind against the format, the
 * judge of a judged suite, a pattern that compiles).
 */
export function parseSuiteSpec(input: unknown): SuiteSpec & { kind: SuiteKind } {
  const spec = parseInput(suiteSpecSchema, input);
  const format = dataFormat(spec.data.format)!;
  const problems: { field: string; message: string }[] = [];
  if (spec.kind !== undefined && spec.kind !== format.kind)
    problems.push({
      field: 'kind',
      message: `${spec.data.format} 형식은 ${format.kind}입니다 / the ${spec.data.format} format is a ${format.kind} suite`,
    });
  const kind = format.kind;
  if ((spec.data.file === undefined) === (spec.data.content === undefined))
    problems.push({ field: 'data', message: 'file 또는 content 하나만 / exactly one of file and content' });
  if (spec.fewShot && spec.fewShot.file !== undefined && spec.fewShot.content !== undefined)
    problems.push({
      field: 'fewShot',
      message: 'file과 content 중 하나만 / at most one of file and content',
    });
  if (kind === 'judge') {
    if (spec.judge === undefined)
      problems.push({ field: 'judge', message: '평가 모델이 필요합니다 / a judged suite needs judge.model' });
    if (spec.fewShot && spec.fewShot.k > 0)
      problems.push({
        field: 'fewShot.k',
        message: '평가형 스위트는 few-shot이 없습니다 / judged suites take no few-shot',
      });
  } else if (spec.judge !== undefined) {
    problems.push({
      field: 'judge',
      message: `${kind} 스위트에는 쓰지 않습니다 / only judged suites have a judge`,
    });
  }
  if (spec.extraction !== undefined && kind !== 'generation')
    problems.push({ field: 'extraction', message: '생성형 스위트에만 / only generation suites extract' });
  if (spec.extraction?.type === 'regex') {
    if (spec.extraction.pattern === undefined)
      problems.push({
        field: 'extraction.pattern',
        message: '정규식이 필요합니다 / a regex extraction needs a pattern',
      });
    else {
      try {
        new RegExp(spec.extraction.pattern, spec.extraction.flags);
      } catch (error) {
        problems.push({ field: 'extraction.pattern', message: (error as Error).message });
      }
    }
  }
  if (problems.length > 0) throw new ValidationError(problems);
  return { ...spec, kind };
}
