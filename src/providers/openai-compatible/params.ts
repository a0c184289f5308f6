import type { AdapterParams } from '../adapter.ts';

/**
 * What the openai-compatible adapter passes through, and what it keeps back. A supplier's OpenAI
 * endpoint bills and stores at its own terms; the hub sells a product at one price with one
 * residency, so only fields that shape the answer (whose tokens the upstream's usage counts and the
 * product's prices cover) reach it. Sources: OpenAI's chat and embeddings API reference, and vLLM's
 * "OpenAI-compatible server" extra parameters (llama.cpp's server and Ollama take the same names).
 */
const CHAT = [
  'messages',
  'model',
  'stream',
  'stream_options',
  'temperature',
  'top_p',
  'n',
  'stop',
  'max_tokens',
  'max_completion_tokens',
  'presence_penalty',
  'frequency_penalty',
  'logit_bias',
  'logprobs',
  'top_logprobs',
  // an end-user id for the supplier's abuse detection; `safety_identifier` is OpenAI's successor of it
  'user',
  'safety_identifier',
  'seed',
  'tools',
  'tool_choice',
  'parallel_tool_calls',
  'functions',
  'function_call',
  'response_format',
  'reasoning_effort',
  // asks for a shorter or longer answer, whose tokens are counted and charged like any other
  'verbosity',
  // sampling extras of vLLM, llama.cpp and Ollama: they change how tokens are picked, not what is billed
  'top_k',
  'min_p',
  'repetition_penalty',
  // arguments to the model's own chat template (e.g. Qwen's `enable_thinking`), not a template itself
  'chat_template_kwargs',
] as const;

const EMBEDDINGS = ['input', 'model', 'encoding_format', 'dimensions', 'user'] as const;

export const OPENAI_COMPATIBLE_PARAMS: AdapterParams = {
  chat: new Set(CHAT),
  embeddings: new Set(EMBEDDINGS),
};

/**
 * Fields clients send that are deliberately kept back, and why: the documentation of the exclusions
 * (a unit test checks none of them is allowed). Everything not in the lists above is dropped too.
 */
export const KEPT_BACK: Readonly<Record<string, string>> = {
  service_tier: "'priority', 'flex' or 'scale' processing is billed by the supplier at other rates",
  store:
    "keeps the conversation on the supplier's servers: retention and residency the product does not promise",
  metadata: 'tags conversations stored with `store`',
  web_search_options: 'a web search billed per call by the supplier, and the prompt sent to a search engine',
  prediction: 'predicted outputs: rejected prediction tokens are billed on top of the answer delivered',
  audio: 'audio output is billed at audio token rates a text product does not carry',
  modalities: "['text', 'audio'] asks for that audio output",
  prompt_cache_key:
    "steers the supplier's prompt cache, which every organisation of the hub shares (one supplier account)",
  prompt_cache_retention: "'24h' keeps prompts cached (stored) at the supplier beyond the request",
  priority: "vLLM's scheduling priority: a client would jump ahead of the supplier's other callers",
  chat_template: 'vLLM renders a Jinja template from the request: code from the client run by the supplier',
  guided_json: "vLLM's structured output by another name; `response_format` is the routed, checked way",
  guided_regex: 'as guided_json',
  guided_choice: 'as guided_json',
  guided_grammar: 'as guided_json',
  structural_tag: 'as guided_json',
  best_of: 'several sequences generated for each one returned and counted: compute nobody pays for',
  use_beam_search: 'as best_of',
  logits_processors: 'names code the vLLM server loads',
  kv_transfer_params: "vLLM's disaggregated serving internals",
  id_slot: "llama.cpp's server slot: pins the call onto another caller's cache",
  keep_alive: "Ollama's model residency: how long the supplier keeps a model loaded",
};
