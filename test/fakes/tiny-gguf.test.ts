import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { getLlama, LlamaChat, LlamaLogLevel } from 'node-llama-cpp';
import { TINY_CHAT_TEMPLATE, tinyGguf, tinyPromptTokens, writeTinyGguf } from './tiny-gguf.ts';

test('the tiny GGUF starts with the v3 header and aligns its data', () => {
  const file = tinyGguf();
  assert.equal(file.subarray(0, 4).toString('ascii'), 'GGUF');
  assert.equal(file.readUInt32LE(4), 3);
  assert.equal(file.readBigUInt64LE(8), 3n + 2n * 9n); // embeddings, output norm and output; 9 per layer
  assert.equal(file.length % 32, 0);
  assert.deepEqual(tinyGguf(), file, 'the same seed writes the same bytes');
});

test('node-llama-cpp loads the tiny GGUF, keeps its chat template and generates with one thread', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'kaihub-gguf-'));
  const llama = await getLlama({
    gpu: false,
    build: 'never',
    progressLogs: false,
    logLevel: LlamaLogLevel.error,
  });
  try {
    await writeTinyGguf(join(dir, 'tiny.gguf'));
    const model = await llama.loadModel({ modelPath: join(dir, 'tiny.gguf') });
    assert.equal(model.fileInfo.metadata.general.architecture, 'llama');
    assert.equal(model.fileInfo.metadata.tokenizer.chat_template, TINY_CHAT_TEMPLATE);
    assert.equal(model.trainContextSize, 512);
    const text = '안녕하세요 K-AI Hub';
    assert.equal(model.detokenize(model.tokenize(text)), text, 'byte vocabulary round-trips');
    assert.equal(model.tokenize(text).length, Buffer.byteLength(text));

    const context = await model.createContext({ contextSize: 512, threads: 1 });
    const chat = new LlamaChat({ contextSequence: context.getSequence() });
    assert.equal(chat.chatWrapper.wrapperName, 'JinjaTemplate', 'the model’s own template is used');
    const messages = [{ role: 'user', content: '안녕' }];
    const state = chat.chatWrapper.generateContextState({
      chatHistory: [
        { type: 'user', text: '안녕' },
        { type: 'model', response: [] },
      ],
    });
    assert.equal(state.contextText.tokenize(model.tokenizer).length, tinyPromptTokens(messages));
    const before = chat.sequence.tokenMeter.getState();
    const reply = await chat.generateResponse(
      [
        { type: 'user', text: '안녕' },
        { type: 'model', response: [] },
      ],
      { maxTokens: 8, temperature: 0.8, seed: 1 },
    );
    const generated = chat.sequence.tokenMeter.diff(before).usedOutputTokens;
    assert.ok(generated > 0 && generated <= 8, `generated ${generated}`);
    assert.equal(typeof reply.response, 'string');
  } finally {
    await llama.dispose();
    await rm(dir, { recursive: true, force: true });
  }
});
