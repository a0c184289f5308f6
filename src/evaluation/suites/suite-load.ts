/**
 * A suite as a run uses it: the spec checked and completed with its defaults, the items read from the
 * data file in its official format, what each item asks, and the suite hash — SHA-256 of the
 * canonical JSON of the spec and the items (where the files lie is not part of it).
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { ValidationError } from '../../errors.ts';
import { parseYaml } from '../../yaml.ts';
import type { ExtractionSettings } from '../scoring/extract.ts';
import {
  DEFAULT_JUDGE_SYSTEM,
  DEFAULT_JUDGE_TEMPLATE,
  JUDGE_PLACEHOLDERS,
  type JudgeSettings,
} from '../scoring/judge.ts';
import { parseNumber } from '../scoring/numbers.ts';
import { canonicalJson, sha256Hex } from './canonical-json.ts';
import type { DataFormat } from './formats/format.ts';
import { dataFormat } from './formats/registry.ts';
import type { SuiteItem, SuiteKind } from './items.ts';
import {
  checkPromptSpec,
  checkTemplate,
  DEFAULT_ANSWER_TEMPLATE,
  DEFAULT_TEMPLATES,
  type PreparedItem,
  type PromptSpec,
  prepareItems,
} from './prompts.ts';
import { FieldReader, readRecords, SuiteDataError } from './records.ts';
import { type CallParameters, parseSuiteSpec, type SuiteSpec } from './suite-spec.ts';

export interface LoadedSuite {
  name: string;
  description: string | null;
  kind: SuiteKind;
  format: string;
  items: SuiteItem[];
  prompt: PromptSpec;
  /** What every call for an item sends beside its messages. */
  parameters: CallParameters;
  extraction: ExtractionSettings | null;
  judge: (JudgeSettings & { parameters: CallParameters }) | null;
  seed: number;
  /** SHA-256 (hex) of the canonical spec and data. */
  hash: string;
  prepared: PreparedItem[];
}

const DEFAULT_PARAMETERS: Record<SuiteKind, CallParameters> = {
  multiple_choice: { temperature: 0, max_tokens: 256 },
  generation: { temperature: 0, max_tokens: 1024 },
  judge: { temperature: 0, max_tokens: 1024 },
};
const DEFAULT_JUDGE_PARAMETERS: CallParameters = { temperature: 0, max_tokens: 1024 };

/** Where a suite's data comes from: its text, or (the CLI only) a file beside the suite file. */
export interface DataReader {
  read(
    source: { file?: string | undefined; content?: string | undefined },
    field: string,
  ): {
    name: string;
    text: string;
  };
}

/** For suites sent over the admin API: the data is in the request; the hub reads no file it names. */
export const inlineDataOnly: DataReader = {
  read(source, field) {
    if (source.file !== undefined)
      throw ValidationError.of(
        `${field}.file`,
        '허브는 요청이 가리키는 파일을 읽지 않습니다. content에 파일 내용을 넣으세요 / the hub reads no file a request names: send the text as content',
      );
    return { name: field, text: source.content ?? '' };
  },
};

/** For the CLI: files named relative to the suite file. */
export function filesBeside(suitePath: string): DataReader {
  const base = dirname(resolve(suitePath));
  return {
    read(source, field) {
      if (source.content !== undefined) return { name: field, text: source.content };
      const path = resolve(base, source.file!);
      try {
        return { name: source.file!, text: readFileSync(path, 'utf8') };
      } catch (error) {
        throw ValidationError.of(
          `${field}.file`,
          `읽을 수 없습니다 / cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
        );
      }
    },
  };
}

function readItems(
  format: DataFormat,
  file: { name: string; text: string },
  category: string | null,
  check: ((item: SuiteItem, reader: FieldReader) => void) | null,
): SuiteItem[] {
  const records = readRecords(file.name, file.text, format.encodings);
  if (records.length === 0)
    throw new SuiteDataError(file.name, null, null, '항목이 없습니다', 'the file holds no items');
  const seen = new Map<string, number>();
  return records.map((record, index) => {
    const reader = new FieldReader(file.name, record);
    const item = format.item(reader, index, { category });
    const earlier = seen.get(item.id);
    if (earlier !== undefined)
      reader.fail('id', `${earlier}행과 같은 id "${item.id}"`, `id "${item.id}" repeats line ${earlier}`);
    seen.set(item.id, record.line);
    check?.(item, reader);
    return item;
  });
}

function extractionOf(spec: SuiteSpec, format: DataFormat): ExtractionSettings | null {
  if (format.kind !== 'generation') return null;
  const e = spec.extraction;
  const type = e?.type ?? (format.name === 'kaihub-generation' ? 'exact' : 'numeric');
  return {
    type,
    pattern: e?.pattern ?? null,
    flags: e?.flags ?? '',
    group: e?.group ?? 1,
    normalizers: e?.normalizers ?? (type === 'numeric' ? [] : ['trim', 'collapse_spaces']),
    tolerance: e?.tolerance ?? 1e-6,
  };
}

function judgeOf(spec: SuiteSpec, format: DataFormat): LoadedSuite['judge'] {
  if (format.kind !== 'judge' || spec.judge === undefined) return null;
  const j = spec.judge;
  const template = j.template ?? DEFAULT_JUDGE_TEMPLATE;
  checkTemplate(template, JUDGE_PLACEHOLDERS, 'judge.template');
  return {
    model: j.model,
    system: j.system ?? DEFAULT_JUDGE_SYSTEM,
    template,
    rubric: j.rubric ?? null,
    scale: j.scale ?? format.scale,
    parameters: { ...DEFAULT_JUDGE_PARAMETERS, ...j.parameters },
  };
}

/** Checks and completes a suite spec and reads its data; every problem names its field or line. */
export function loadSuite(input: unknown, data: DataReader): LoadedSuite {
  const spec = parseSuiteSpec(input);
  const format = dataFormat(spec.data.format)!;
  const kind = format.kind;
  const extraction = extractionOf(spec, format);
  const category = spec.data.category ?? null;
  // a numeric answer key must be numbers throughout, or every answer would be scored wrong
  const numericCheck =
    extraction?.type === 'numeric'
      ? (item: SuiteItem, reader: FieldReader) => {
          if (parseNumber((item as { answer: string }).answer) === null)
            reader.fail(
              'answer',
              '숫자 하나여야 합니다(numeric 추출)',
              'must be one number (numeric extraction)',
            );
        }
      : null;
  let items = readItems(format, data.read(spec.data, 'data'), category, numericCheck);
  if (spec.limit !== undefined) items = items.slice(0, spec.limit);
  const shots = spec.fewShot?.k ?? 0;
  const pool =
    shots > 0 && (spec.fewShot!.file !== undefined || spec.fewShot!.content !== undefined)
      ? readItems(format, data.read(spec.fewShot!, 'fewShot'), category, numericCheck)
      : items;
  const prompt: PromptSpec = {
    kind,
    style: spec.prompt?.style ?? 'chat',
    system: spec.prompt?.system ?? null,
    template: spec.prompt?.template ?? DEFAULT_TEMPLATES[kind],
    answerTemplate: spec.prompt?.answerTemplate ?? DEFAULT_ANSWER_TEMPLATE,
    fewShot: shots,
    seed: spec.seed,
  };
  checkPromptSpec(prompt);
  const parameters = { ...DEFAULT_PARAMETERS[kind], ...spec.parameters };
  const judge = judgeOf(spec, format);
  const hashed = {
    name: spec.name,
    kind,
    format: format.name,
    category,
    limit: spec.limit ?? null,
    prompt,
    parameters,
    extraction,
    judge,
    items,
    fewShotPool: pool === items ? null : pool,
  };
  return {
    name: spec.name,
    description: spec.description ?? null,
    kind,
    format: format.name,
    items,
    prompt,
    parameters,
    extraction,
    judge,
    seed: spec.seed,
    hash: sha256Hex(canonicalJson(hashed)),
    prepared: prepareItems(prompt, items, pool),
  };
}

/** A suite file: YAML (JSON is YAML too), its data files beside it. */
export function loadSuiteFile(path: string): LoadedSuite {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw ValidationError.of(
      'suite',
      `읽을 수 없습니다 / cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
    );
  }
  let spec: unknown;
  try {
    spec = parseYaml(text);
  } catch (error) {
    throw ValidationError.of(
      'suite',
      `YAML/JSON이 올바르지 않습니다 / not valid YAML or JSON: ${(error as Error).message}`,
    );
  }
  return loadSuite(spec, filesBeside(path));
}
