/**
 * Runs and items as the database holds them, and as services read them: the row mappers beside the
 * shapes they make (run-store.ts writes and queries them).
 */
import type { RunResult } from '../scoring/aggregate.ts';
import type { ItemRequest } from '../suites/prompts.ts';
import type { RunManifest } from './manifest.ts';

export type RunStatus = 'queued' | 'running' | 'completed' | 'incomplete' | 'failed';
/** Who works on the run: the CLI process that started it, the hub's own queue, or BullMQ workers. */
export type ExecutorKind = 'cli' | 'hub' | 'bullmq';

export interface RunRecord {
  id: string;
  productId: string;
  model: string;
  suite: { name: string; kind: string; hash: string };
  status: RunStatus;
  executor: ExecutorKind;
  concurrency: number;
  itemCount: number;
  /** Never shown in the catalogue (`/v1/models` metadata, the admin product view). */
  private: boolean;
  manifest: RunManifest;
  manifestHash: string;
  result: RunResult | null;
  error: string | null;
  createdBy: string;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
}

export interface RunProgress {
  done: number;
  failed: number;
  pending: number;
  /** Pending items another worker holds a live claim on. */
  claimed: number;
}

export interface ClaimedItem {
  seq: number;
  itemId: string;
  category: string;
  request: ItemRequest;
  expected: string | null;
}

export interface JudgeLogEntry {
  turn: number;
  model: string;
  prompt: { role: string; content: string }[];
  verdict: string | null;
  score: number | null;
  requestId: string | null;
}

export interface ItemOutcome {
  /** One answer per turn (one for a plain item). */
  answers: string[];
  extracted: string | null;
  correct: boolean | null;
  unparsed: boolean;
  score: number | null;
  judge: JudgeLogEntry[] | null;
  requestIds: string[];
  latencyMs: number;
}

export interface RunItemView {
  seq: number;
  itemId: string;
  category: string;
  status: 'pending' | 'done' | 'failed';
  prompt: ItemRequest;
  expected: string | null;
  rawAnswer: string | string[] | null;
  extracted: string | null;
  correct: boolean | null;
  unparsed: boolean | null;
  score: number | null;
  judge: JudgeLogEntry[] | null;
  requestIds: string[];
  attempts: number;
  error: string | null;
  latencyMs: number | null;
  answeredAt: string | null;
}

export interface NewRun {
  id: string;
  productId: string;
  model: string;
  manifest: RunManifest;
  manifestHash: string;
  executor: ExecutorKind;
  concurrency: number;
  private: boolean;
  createdBy: string;
}

export const RUN_COLUMNS = `id, product_id, model, suite_name, suite_kind, suite_hash, manifest_hash, manifest_json, status,
  executor, concurrency, item_count, result_json, error, created_by, created_at, started_at, finished_at, private`;

export const iso = (ms: unknown) =>
  ms === null || ms === undefined ? null : new Date(Number(ms)).toISOString();

export function toRun(r: Record<string, unknown>): RunRecord {
  return {
    id: r.id as string,
    productId: r.product_id as string,
    model: r.model as string,
    suite: { name: r.suite_name as string, kind: r.suite_kind as string, hash: r.suite_hash as string },
    status: r.status as RunStatus,
    executor: r.executor as ExecutorKind,
    concurrency: Number(r.concurrency),
    itemCount: Number(r.item_count),
    private: Number(r.private) === 1,
    manifest: JSON.parse(r.manifest_json as string) as RunManifest,
    manifestHash: r.manifest_hash as string,
    result: r.result_json ? (JSON.parse(r.result_json as string) as RunResult) : null,
    error: (r.error as string | null) ?? null,
    createdBy: r.created_by as string,
    createdAt: iso(r.created_at)!,
    startedAt: iso(r.started_at),
    finishedAt: iso(r.finished_at),
  };
}

export const bool = (v: unknown): boolean | null => (v === null || v === undefined ? null : Number(v) === 1);

export function toItem(r: Record<string, unknown>): RunItemView {
  const prompt = JSON.parse(r.request_json as string) as ItemRequest;
  const raw = (r.raw_answer as string | null) ?? null;
  return {
    seq: Number(r.seq),
    itemId: r.item_id as string,
    category: r.category as string,
    status: r.status as RunItemView['status'],
    prompt,
    expected: (r.expected as string | null) ?? null,
    rawAnswer: raw === null ? null : prompt.type === 'conversation' ? (JSON.parse(raw) as string[]) : raw,
    extracted: (r.extracted as string | null) ?? null,
    correct: bool(r.correct),
    unparsed: bool(r.unparsed),
    score: r.score === null || r.score === undefined ? null : Number(r.score),
    judge: r.judge_json ? (JSON.parse(r.judge_json as string) as JudgeLogEntry[]) : null,
    requestIds: r.request_ids ? (JSON.parse(r.request_ids as string) as string[]) : [],
    attempts: Number(r.attempts),
    error: (r.error as string | null) ?? null,
    latencyMs: r.latency_ms === null || r.latency_ms === undefined ? null : Number(r.latency_ms),
    answeredAt: iso(r.answered_at),
  };
}
