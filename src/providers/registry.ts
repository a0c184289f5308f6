import type { Dispatcher } from 'undici';
import type { ProviderAdapter } from './adapter.ts';
import { ClovaStudioAdapter } from './clova-studio/adapter.ts';
import type { UpstreamLimits } from './http.ts';
import { LocalAdapter } from './local/adapter.ts';
import type { LocalRuntimeOptions } from './local/runtime.ts';
import { OpenAICompatibleAdapter } from './openai-compatible/adapter.ts';

export interface AdapterSettings {
  /** The in-process runtime of the `local` adapter (node-llama-cpp). */
  local: LocalRuntimeOptions;
  /** What the hub holds of one upstream answer (the adapters speaking HTTP). */
  limits: UpstreamLimits;
  /** The pool for URLs a supplier admin set (providers/network.ts); without one such calls fail. */
  supplierDispatcher?: Dispatcher;
}

/**
 * The one list of adapters: a deployment's `adapter` field names one of these (the catalog validates
 * against `ADAPTER_NAMES`), and `createAdapters` builds them. Adding a supplier protocol is adding a
 * folder and a line here.
 */
const ADAPTERS = {
  'openai-compatible': (dispatcher: Dispatcher, settings: AdapterSettings) =>
    new OpenAICompatibleAdapter(dispatcher, settings.limits, settings.supplierDispatcher),
  'clova-studio': (dispatcher: Dispatcher, settings: AdapterSettings) =>
    new ClovaStudioAdapter(dispatcher, settings.limits, settings.supplierDispatcher),
  local: (_dispatcher: Dispatcher, settings: AdapterSettings) => new LocalAdapter(settings.local),
} satisfies Record<string, (dispatcher: Dispatcher, settings: AdapterSettings) => ProviderAdapter>;

export type AdapterName = keyof typeof ADAPTERS;
export const ADAPTER_NAMES = Object.keys(ADAPTERS) as [AdapterName, ...AdapterName[]];

export function createAdapters(
  dispatcher: Dispatcher,
  settings: AdapterSettings,
): ReadonlyMap<string, ProviderAdapter> {
  return new Map(ADAPTER_NAMES.map((name) => [name, ADAPTERS[name](dispatcher, settings)]));
}

/** Frees what adapters hold (loaded local models); the hub calls it on shutdown. */
export async function closeAdapters(adapters: ReadonlyMap<string, ProviderAdapter>): Promise<void> {
  await Promise.all([...adapters.values()].map((a) => a.close?.()));
}
