import type { Dispatcher } from 'undici';
import type { ProviderAdapter } from './adapter.ts';
import { ClovaStudioAdapter } from './clova-studio/adapter.ts';
import { LocalAdapter } from './local/adapter.ts';
import type { LocalRuntimeOptions } from './local/runtime.ts';
import { OpenAICompatibleAdapter } from './openai-compatible/adapter.ts';

export interface AdapterSettings {
  /** The in-process runtime of the `local` adapter (node-llama-cpp). */
  local: LocalRuntimeOptions;
}

/** The one place adapters are registered; a deployment's `adapter` field names one of these. */
export function createAdapters(
  dispatcher: Dispatcher,
  settings: AdapterSettings,
): ReadonlyMap<string, ProviderAdapter> {
  const adapters: ProviderAdapter[] = [
    new OpenAICompatibleAdapter(dispatcher),
    new ClovaStudioAdapter(dispatcher),
    new LocalAdapter(settings.local),
  ];
  return new Map(adapters.map((a) => [a.name, a]));
}

/** Frees what adapters hold (loaded local models); the hub calls it on shutdown. */
export async function closeAdapters(adapters: ReadonlyMap<string, ProviderAdapter>): Promise<void> {
  await Promise.all([...adapters.values()].map((a) => a.close?.()));
}
