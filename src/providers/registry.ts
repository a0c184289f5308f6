import type { Dispatcher } from 'undici';
import type { ProviderAdapter } from './adapter.ts';
import { ClovaStudioAdapter } from './clova-studio/adapter.ts';
import { OpenAICompatibleAdapter } from './openai-compatible/adapter.ts';

/** The one place adapters are registered; a deployment's `adapter` field names one of these. */
export function createAdapters(dispatcher: Dispatcher): ReadonlyMap<string, ProviderAdapter> {
  const adapters: ProviderAdapter[] = [
    new OpenAICompatibleAdapter(dispatcher),
    new ClovaStudioAdapter(dispatcher),
  ];
  return new Map(adapters.map((a) => [a.name, a]));
}
