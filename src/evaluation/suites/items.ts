/** What a suite asks, item by item, once its data file has been read (formats/*.ts). */

export const SUITE_KINDS = ['multiple_choice', 'generation', 'judge'] as const;
export type SuiteKind = (typeof SUITE_KINDS)[number];

/** Labels of the choices, in order: the model answers with one of them. */
export const CHOICE_LABELS = ['A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'I', 'J'] as const;

export interface MultipleChoiceItem {
  id: string;
  category: string;
  /** A passage the question is about (KoBEST BoolQ's paragraph, CLIcK's paragraph), or null. */
  context: string | null;
  question: string;
  choices: string[];
  /** Index into `choices` of the right one. */
  answer: number;
}

export interface GenerationItem {
  id: string;
  category: string;
  question: string;
  /** The gold answer as text (a number for HRM8K and GSM8K). */
  answer: string;
}

/** A scoring rubric that comes with the item (K2-Eval): what is judged, and what each score means. */
export interface ItemRubric {
  criteria: string | null;
  /** levels[i] describes the score `i + 1`. */
  levels: string[];
}

export interface JudgeItem {
  id: string;
  category: string;
  /** The user's turns, asked in order in one conversation (KoMT-Bench and LogicKor have two). */
  turns: string[];
  /** A reference answer per turn, where the benchmark gives one. */
  references: (string | null)[];
  rubric: ItemRubric | null;
}

export type SuiteItems =
  | { kind: 'multiple_choice'; items: MultipleChoiceItem[] }
  | { kind: 'generation'; items: GenerationItem[] }
  | { kind: 'judge'; items: JudgeItem[] };

export type SuiteItem = MultipleChoiceItem | GenerationItem | JudgeItem;
