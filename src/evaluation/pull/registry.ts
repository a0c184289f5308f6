import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { parseInput } from '../../validation.ts';

/**
 * Benchmarks `kaihub eval pull` knows (docs/evaluation-rounds.md#pulling-official-data): where each
 * file of the official data is, its SHA-256 where it is pinned, and the licence it comes under. The
 * repository ships no benchmark item (issue 14): only this list, so that the data is fetched from
 * its publisher, checked and kept beside the hub.
 *
 * The shipped entries point at the publishers' Hugging Face datasets (`{hf}` is KAIHUB_HF_ENDPOINT,
 * https://huggingface.co by default, so a mirror works the same). Their hashes are not pinned: this
 * repository was written where those hosts cannot be reached, and a hash nobody computed would be a
 * lie. An unpinned file is checked against the SHA-256 recorded the first time it was pulled
 * (`SHA256SUMS` beside it), and `--require-pinned` refuses it. An operator pins hashes, or adds
 * benchmarks, in a registry file of the same shape (`--registry`, KAIHUB_BENCHMARK_REGISTRY).
 */

const sha256Hex = z.string().regex(/^[0-9a-f]{64}$/, 'a SHA-256 in lowercase hex');

const fileInput = z.strictObject({
  /** Where it lands, under the benchmark's folder: plain names and folders, no `..`. */
  path: z
    .string()
    .min(1)
    .max(300)
    .regex(/^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/, 'a relative path of plain names')
    .refine((p) => !p.split('/').some((part) => part === '..' || part === '.'), 'no . or .. in a path'),
  url: z.string().min(1).max(2000),
  sha256: sha256Hex.nullable().default(null),
  bytes: z.number().int().positive().nullable().default(null),
});

const benchmarkInput = z.strictObject({
  id: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,39}$/, 'lowercase letters, digits, - and _'),
  name: z.string().min(1).max(200),
  homepage: z.string().min(1).max(2000),
  licence: z.strictObject({ name: z.string().min(1).max(200), url: z.string().min(1).max(2000) }),
  /** The licence restricts use (no derivatives, non-commercial, a gated agreement): pulled only once accepted. */
  acceptanceRequired: z.boolean(),
  files: z.array(fileInput).min(1).max(2000),
});

const registryInput = z.strictObject({ benchmarks: z.array(benchmarkInput).min(1).max(500) });

export type Benchmark = z.infer<typeof benchmarkInput>;
export type BenchmarkFile = Benchmark['files'][number];

const hf = (repo: string, path: string) => `{hf}/datasets/${repo}/resolve/main/${path}`;

/** KMMLU's 45 subjects as its files name them (two in lower case, as published). */
const KMMLU_SUBJECTS = [
  'Accounting',
  'Agricultural-Sciences',
  'Aviation-Engineering-and-Maintenance',
  'Biology',
  'Chemical-Engineering',
  'Chemistry',
  'Civil-Engineering',
  'Computer-Science',
  'Construction',
  'Criminal-Law',
  'Ecology',
  'Economics',
  'Education',
  'Electrical-Engineering',
  'Electronics-Engineering',
  'Energy-Management',
  'Environmental-Science',
  'Fashion',
  'Food-Processing',
  'Gas-Technology-and-Engineering',
  'Geomatics',
  'Health',
  'Industrial-Engineer',
  'Information-Technology',
  'Interior-Architecture-and-Design',
  'Law',
  'Machine-Design-and-Manufacturing',
  'Management',
  'Maritime-Engineering',
  'Marketing',
  'Materials-Engineering',
  'Mechanical-Engineering',
  'Nondestructive-Testing',
  'Patent',
  'Political-Science-and-Sociology',
  'Psychology',
  'Public-Safety',
  'Railway-and-Automotive-Engineering',
  'Real-Estate',
  'Refrigerating-Machinery',
  'Social-Welfare',
  'Taxation',
  'Telecommunications-and-Wireless-Technology',
  'korean-history',
  'math',
];

const unpinned = (path: string, url: string): BenchmarkFile => ({ path, url, sha256: null, bytes: null });

export const SHIPPED_BENCHMARKS: readonly Benchmark[] = [
  {
    id: 'kmmlu',
    name: 'KMMLU (HAERAE-HUB)',
    homepage: 'https://huggingface.co/datasets/HAERAE-HUB/KMMLU',
    licence: { name: 'CC BY-ND 4.0', url: 'https://creativecommons.org/licenses/by-nd/4.0/' },
    // no derivatives: the items may be used as published, not altered and shared
    acceptanceRequired: true,
    files: KMMLU_SUBJECTS.flatMap((s) =>
      ['dev', 'test'].map((split) =>
        unpinned(`data/${s}-${split}.csv`, hf('HAERAE-HUB/KMMLU', `data/${s}-${split}.csv`)),
      ),
    ),
  },
  {
    id: 'hrm8k',
    name: 'HRM8K (HAERAE-HUB)',
    homepage: 'https://huggingface.co/datasets/HAERAE-HUB/HRM8K',
    licence: { name: 'MIT', url: 'https://opensource.org/license/mit' },
    acceptanceRequired: false,
    files: ['gsm8k_test', 'ksm_test', 'math_do_test', 'omni-math_do_test', 'mmmlu_test'].map((f) =>
      unpinned(`HRM8K/${f}.csv`, hf('HAERAE-HUB/HRM8K', `HRM8K/${f}.csv`)),
    ),
  },
  {
    id: 'kobest',
    name: 'KoBEST (SK Telecom)',
    homepage: 'https://huggingface.co/datasets/skt/kobest_v1',
    licence: { name: 'CC BY-SA 4.0', url: 'https://creativecommons.org/licenses/by-sa/4.0/' },
    // share-alike binds what is redistributed, not evaluating with it
    acceptanceRequired: false,
    files: [
      ...['boolq', 'copa', 'hellaswag', 'wic'].flatMap((task) =>
        ['train', 'validation', 'test'].map((split) => `${task}/${split}.jsonl`),
      ),
      ...['train', 'validation', 'test', 'test_originated'].map((split) => `sentineg/${split}.jsonl`),
    ].map((path) => unpinned(path, hf('skt/kobest_v1', path))),
  },
  {
    id: 'haerae',
    name: 'HAE-RAE Bench 1.1 (HAERAE-HUB)',
    homepage: 'https://huggingface.co/datasets/HAERAE-HUB/HAE_RAE_BENCH_1.1',
    licence: { name: 'CC BY-NC-ND 4.0', url: 'https://creativecommons.org/licenses/by-nc-nd/4.0/' },
    acceptanceRequired: true,
    // only the file whose path the dataset's history confirms; the other tasks go in a registry file
    files: [unpinned('data/loan_words.tsv', hf('HAERAE-HUB/HAE_RAE_BENCH_1.1', 'data/loan_words.tsv'))],
  },
  {
    id: 'click',
    name: 'CLIcK (Cultural and Linguistic Intelligence in Korean)',
    homepage: 'https://huggingface.co/datasets/EunsuKim/CLIcK',
    // the dataset card states no licence and its items come from official Korean exams: accepted explicitly
    licence: {
      name: 'no licence stated (items from official exams)',
      url: 'https://huggingface.co/datasets/EunsuKim/CLIcK',
    },
    acceptanceRequired: true,
    files: [
      'Language/Functional/Functional_CSAT.json',
      'Language/Functional/Functional_Kedu.json',
      'Language/Functional/Functional_PSE.json',
      'Language/Textual/Textual_CSAT.json',
      'Language/Textual/Textual_TOPIK.json',
    ].map((path) => unpinned(path, hf('EunsuKim/CLIcK', `Dataset/${path}`))),
  },
  {
    id: 'k2-eval',
    name: 'K2-Eval (HAERAE-HUB)',
    homepage: 'https://huggingface.co/datasets/HAERAE-HUB/K2-Eval',
    licence: { name: 'MIT', url: 'https://opensource.org/license/mit' },
    acceptanceRequired: false,
    files: ['data/k2-eval-knowledge.csv', 'data/k2-eval-generation.csv'].map((path) =>
      unpinned(path, hf('HAERAE-HUB/K2-Eval', path)),
    ),
  },
  {
    id: 'komt-bench',
    name: 'KoMT-Bench (LG AI Research)',
    homepage: 'https://huggingface.co/datasets/LGAI-EXAONE/KoMT-Bench',
    licence: { name: 'LGPL-3.0', url: 'https://www.gnu.org/licenses/lgpl-3.0.html' },
    acceptanceRequired: false,
    files: [unpinned('raw/question_ko.jsonl', hf('LGAI-EXAONE/KoMT-Bench', 'raw/question_ko.jsonl'))],
  },
  {
    id: 'logickor',
    name: 'LogicKor',
    homepage: 'https://huggingface.co/datasets/maywell/LogicKor',
    licence: { name: 'CC BY-SA 4.0', url: 'https://creativecommons.org/licenses/by-sa/4.0/' },
    acceptanceRequired: false,
    files: [unpinned('questions.jsonl', hf('maywell/LogicKor', 'questions.jsonl'))],
  },
];

/** The shipped list, with a registry file's entries added (or replacing those of the same id). */
export function loadRegistry(file: string | undefined): Benchmark[] {
  const all = new Map(SHIPPED_BENCHMARKS.map((b) => [b.id, b]));
  if (file !== undefined) {
    let json: unknown;
    try {
      json = JSON.parse(readFileSync(file, 'utf8'));
    } catch (error) {
      throw new RegistryError(`${file}: ${(error as Error).message}`);
    }
    try {
      for (const b of parseInput(registryInput, json).benchmarks) all.set(b.id, b);
    } catch (error) {
      throw new RegistryError(`${file}: ${(error as Error).message}`);
    }
  }
  return [...all.values()];
}

export class RegistryError extends Error {
  override name = 'RegistryError';
}
