import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { messageText } from '../fakes/openai-upstream.ts';

/**
 * A generated multiple-choice suite (the hub's own JSONL) whose answers a fake model knows by item
 * number: item i is answered right when i % 3 = 0, wrong when i % 3 = 1, and unparsably when
 * i % 3 = 2. Categories alternate (짝 even, 홀 odd).
 */
export interface GeneratedSuite {
  dir: string;
  path: string;
  items: number;
  /** The fake's reply to a chat whose last user message is one of this suite's items. */
  reply(messages: readonly unknown[]): string | undefined;
  /** The item number a request asks, or null. */
  itemOf(messages: readonly unknown[]): number | null;
}

export function lastUserText(messages: readonly unknown[]): string {
  for (let i = messages.length - 1; i >= 0; i--) {
    const m = messages[i] as { role?: string };
    if (m.role === 'user') return messageText(m);
  }
  return '';
}

export function generatedSuite(items: number, name = 'generated-mc'): GeneratedSuite {
  const dir = mkdtempSync(join(tmpdir(), 'kaihub-eval-suite-'));
  const lines: string[] = [];
  for (let i = 0; i < items; i++) {
    lines.push(
      JSON.stringify({
        id: `q${i}`,
        category: i % 2 === 0 ? '짝' : '홀',
        question: `문항 ${i}: ${i} 더하기 1은 얼마입니까?`,
        choices: [String(i), String(i + 1), String(i + 2), String(i + 3)],
        answer: 1,
      }),
    );
  }
  writeFileSync(join(dir, 'items.jsonl'), `${lines.join('\n')}\n`);
  const path = join(dir, 'suite.yaml');
  writeFileSync(
    path,
    `name: ${name}\ndata:\n  file: items.jsonl\n  format: kaihub-mc\nseed: 3\nparameters:\n  max_tokens: 8\n`,
  );
  const itemOf = (messages: readonly unknown[]) => {
    const m = /문항 (\d+):/.exec(lastUserText(messages));
    return m ? Number(m[1]) : null;
  };
  return {
    dir,
    path,
    items,
    itemOf,
    reply(messages) {
      const i = itemOf(messages);
      if (i === null) return undefined;
      return i % 3 === 0 ? '정답: B' : i % 3 === 1 ? '정답: A' : '모르겠어요';
    },
  };
}
