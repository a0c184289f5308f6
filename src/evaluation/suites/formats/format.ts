import type { GenerationItem, JudgeItem, MultipleChoiceItem } from '../items.ts';
import type { Encoding, FieldReader } from '../records.ts';

/** What a suite says about its data beyond the file: a category for files that carry none. */
export interface FormatContext {
  category: string | null;
}

interface FormatBase<K extends string, I> {
  /** As a suite names it in `data.format`. */
  name: string;
  kind: K;
  /** What the official files are: CSV, JSON lines, a JSON array. */
  encodings: readonly Encoding[];
  /** One record → one item; throws a SuiteDataError naming the line and field at fault. */
  item(r: FieldReader, index: number, ctx: FormatContext): I;
}

export type MultipleChoiceFormat = FormatBase<'multiple_choice', MultipleChoiceItem>;
export type GenerationFormat = FormatBase<'generation', GenerationItem>;
export type JudgeFormat = FormatBase<'judge', JudgeItem> & {
  /** The judge's scale the benchmark was made for (K2-Eval 1–5, MT-Bench style 1–10). */
  scale: { min: number; max: number };
};

export type DataFormat = MultipleChoiceFormat | GenerationFormat | JudgeFormat;
