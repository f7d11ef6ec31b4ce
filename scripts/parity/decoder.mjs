// Greedy continuations by llama.cpp (node-llama-cpp's prebuilt CPU build) of the decoder GGUFs that
// tests/tools/make_test_decoder writes: stories260K (real weights) and the random-weight
// SmolLM2-135M (f16, q8_0, q4_k_m) and Qwen2.5-0.5B (q8_0) shapes. For each prompt: its token ids
// (llama.cpp's tokenizer, BOS prepended when the vocabulary asks for one), the first 32 greedy
// tokens, and at every step the two best logits (token, value), so the test can tell a real
// disagreement from a near-tie.
// Writes tests/fixtures/decoder/<name>.json.
//   build/tests/make_test_decoder ...   (see tests/fixtures/decoder/README.md for the exact commands)
//   node decoder.mjs /tmp/dec [name ...]
import { getLlama } from 'node-llama-cpp';
import fs from 'fs';
import path from 'path';

const dir = path.resolve(process.argv[2] ?? '/tmp/dec');
const out = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../tests/fixtures/decoder');
const names = process.argv.length > 3 ? process.argv.slice(3)
  : ['stories260K', 'smollm2-f16', 'smollm2-q8_0', 'smollm2-q4_k_m', 'qwen2.5-q8_0'];
const steps = 32;

export const prompts = [
  'Once upon a time',
  'The capital of France is',
  'def fibonacci(n):\n    if n < 2:\n        return n\n',
  'Retrieval-augmented generation combines a search index with a language model.',
  'Q: What is the boiling point of water at sea level?\nA:',
  '서울은 대한민국의 수도이며',
  'SELECT name, count(*) FROM documents GROUP BY name ORDER BY 2 DESC;',
  'In 1969, Apollo 11 landed on the Moon. The crew were',
  'The quick brown fox jumps over the lazy dog. The quick brown fox',
  '1, 2, 3, 5, 8, 13, 21,',
  'Les modèles de langue sont entraînés sur',
  '<html><head><title>saem</title></head><body>',
  'Summarise: PostgreSQL uses multiversion concurrency control so that readers never block writers.',
  "It's a truth universally acknowledged, that a single man in possession of a good fortune",
  '    indented text with\ttabs and  double  spaces',
  'Emoji 🙂 and symbols © ™ → are tokens too.',
  'User: hello!\nAssistant:',
  'The mitochondria is the powerhouse of the cell because',
  'Ünïcödé ñormalisation: café, naïve, Øresund.',
  'Write a haiku about the sea:\n',
];

const llama = await getLlama({ build: 'never', gpu: false });
fs.mkdirSync(out, { recursive: true });
for (const name of names) {
  const file = `${dir}/${name}.gguf`;
  const model = await llama.loadModel({ modelPath: file });
  const ctx = await model.createContext({ contextSize: 512, batchSize: 512, threads: 2, flashAttention: false });
  const seq = ctx.getSequence();
  const bos = model.tokens.bos;
  const addBos = model.fileInfo.metadata.tokenizer.ggml.add_bos_token ?? (model.fileInfo.metadata.tokenizer.ggml.model === 'llama');
  const cases = [];
  const list = name === 'stories260K' ? ['Once upon a time'] : prompts;
  for (const text of list) {
    const ids = [...(addBos && bos != null ? [bos] : []), ...model.tokenize(text, false)];
    await seq.clearHistory();
    const want = { generateNext: { logits: { filter: { tokens: [], includeTop: 2 } } } };
    const generated = [], top = [];
    let input = [...ids.slice(0, -1), [ids[ids.length - 1], want]];
    const n = name === 'stories260K' ? 64 - ids.length + 1 : steps;
    for (let step = 0; step < n; ++step) {
      const res = await seq.controlledEvaluate(input);
      const logits = [...res[res.length - 1].next.logits.entries()];
      const [token] = logits[0];
      generated.push(token);
      top.push(logits.slice(0, 2).map(([t, l]) => [t, l]));
      input = [[token, want]];
    }
    cases.push({ prompt: text, ids, generated, top });
  }
  const record = {
    model: `${name}.gguf`, bytes: fs.statSync(file).size, steps, context: 512, flash_attention: false,
    node_llama_cpp: JSON.parse(fs.readFileSync(new URL('./node_modules/node-llama-cpp/package.json', import.meta.url))).version,
    llama_cpp_release: JSON.parse(fs.readFileSync(new URL('./node_modules/node-llama-cpp/llama/binariesGithubRelease.json', import.meta.url))).release,
    cases,
  };
  fs.writeFileSync(`${out}/${name}.json`, JSON.stringify(record) + '\n');
  console.log(`${name}: ${cases.length} prompts; first: ${model.detokenize(cases[0].generated).slice(0, 80)}`);
  await ctx.dispose();
}
process.exit(0);  // disposing llama.cpp contexts can hang; nothing is left to flush
