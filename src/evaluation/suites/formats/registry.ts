/** Every data format a suite may name, in one table (docs/evaluation.md lists them). */
import type { DataFormat } from './format.ts';
import { gsm8k, hrm8k, kaihubGeneration } from './generation.ts';
import { k2Eval, kaihubJudge, komtBench, logicKor } from './judge.ts';
import { click, haerae, kaihubMultipleChoice, kmmlu, kobestFormats } from './multiple-choice.ts';

export const DATA_FORMATS: readonly DataFormat[] = [
  kmmlu,
  ...kobestFormats,
  haerae,
  click,
  kaihubMultipleChoice,
  hrm8k,
  gsm8k,
  kaihubGeneration,
  k2Eval,
  komtBench,
  logicKor,
  kaihubJudge,
];

export const DATA_FORMAT_NAMES = DATA_FORMATS.map((f) => f.name);

export function dataFormat(name: string): DataFormat | undefined {
  return DATA_FORMATS.find((f) => f.name === name);
}
