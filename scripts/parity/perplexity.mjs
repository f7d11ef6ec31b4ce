// Perplexity by llama.cpp's method (tools/perplexity, default mode: consecutive windows, BOS in
// place of each window's first token where the vocabulary wants one, the second half of each
// window scored), computed here from llama.cpp's own logits (node-llama-cpp's prebuilt CPU build)
// of the decoder GGUFs that tests/tools/make_test_decoder writes, and of the files `saem quantize`
// makes from stories260K (F32) and the SmolLM2 F16 shape (NAME-TYPE.gguf: Q8_0, Q4_0, Q5_0,
// Q4_K_M, Q5_K_M, Q6_K), over tests/data/stories.txt.
// For each model: the text's token ids, every scored token's negative log-likelihood
// (max + log(sum exp(logit - max)) - logit[token], from llama.cpp's whole row of raw logits), and
// PPL +/- its error as llama.cpp prints them. (node-llama-cpp's filtered logits and its
// totalLogitWeight are not used: they are taken after its default sampling filters.)
// Writes tests/fixtures/decoder/perplexity-<name>.json.
//   for t in q8_0 q4_0 q5_0 q4_k_m q5_k_m q6_k; do
//     build/saem quantize /tmp/dec/stories260K.gguf /tmp/dec/stories260K-$t.gguf $t
//     build/saem quantize /tmp/dec/smollm2-f16.gguf /tmp/dec/smollm2-f16-$t.gguf $t
//   done
//   node perplexity.mjs /tmp/dec [name ...]
import { getLlama } from 'node-llama-cpp';
import fs from 'fs';
import path from 'path';

const here = path.dirname(new URL(import.meta.url).pathname);
const dir = path.resolve(process.argv[2] ?? '/tmp/dec');
const out = path.resolve(process.env.PARITY_OUT ?? path.resolve(here, '../../tests/fixtures/decoder'));
const textFile = path.resolve(here, '../../tests/data/stories.txt');
const text = fs.readFileSync(textFile, 'utf8');
const quantized = ['q8_0', 'q4_0', 'q5_0', 'q4_k_m', 'q5_k_m', 'q6_k'];
const names = process.argv.length > 3 ? process.argv.slice(3)
  : ['stories260K', 'smollm2-f16', 'smollm2-q8_0', 'smollm2-q4_k_m', 'qwen2.5-q8_0',
     ...quantized.map((t) => `stories260K-${t}`), ...quantized.map((t) => `smollm2-f16-${t}`)];
// stories260K is small enough to score the whole text with a window of 128; the full-size random
// shapes use 64 (several windows from the same text, each a batched pass through 24-30 layers).
const contextOf = (name) => (name.startsWith('stories260K') ? 128 : 64);

const llama = await getLlama({ build: 'never', gpu: false });
for (const name of names) {
  const file = `${dir}/${name}.gguf`;
  const model = await llama.loadModel({ modelPath: file });
  const nCtx = contextOf(name);
  const ctx = await model.createContext({ contextSize: nCtx, batchSize: nCtx, threads: 2, flashAttention: false });
  const seq = ctx.getSequence();
  const bos = model.tokens.bos;
  const addBos = model.fileInfo.metadata.tokenizer.ggml.add_bos_token ?? (model.fileInfo.metadata.tokenizer.ggml.model === 'llama');
  const ids = [...(addBos && bos != null ? [bos] : []), ...model.tokenize(text, false)];
  const windows = Math.floor(ids.length / nCtx);
  if (windows < 2) throw new Error(`${name}: ${ids.length} tokens make fewer than two windows of ${nCtx}`);
  const first = nCtx >> 1;
  const tokenNll = [];
  let nll = 0, nll2 = 0;
  for (let w = 0; w < windows; ++w) {
    const window = ids.slice(w * nCtx, (w + 1) * nCtx);
    if (addBos && bos != null) window[0] = bos;
    await seq.clearHistory();
    const input = window.map((t, j) => (j >= first && j < nCtx - 1
      ? [t, { generateNext: { logits: true } }]
      : t));
    const res = await seq.controlledEvaluate(input);
    for (let j = first; j < nCtx - 1; ++j) {
      const logits = res[j].next.logits;
      let max = -Infinity, sum = 0;
      for (const l of logits.values()) max = Math.max(max, l);
      for (const l of logits.values()) sum += Math.exp(l - max);
      const v = max + Math.log(sum) - logits.get(window[j + 1]);
      tokenNll.push(Number(v.toPrecision(7)));
      nll += v;
      nll2 += v * v;
    }
  }
  const count = tokenNll.length;
  const mean = nll / count;
  const ppl = Math.exp(mean);
  const variance = nll2 / count - mean * mean;
  const pplError = variance > 0 ? Math.sqrt(variance / (count - 1)) * ppl : 0;
  const record = {
    model: `${name}.gguf`, bytes: fs.statSync(file).size, text: 'tests/data/stories.txt', context: nCtx,
    flash_attention: false,
    node_llama_cpp: JSON.parse(fs.readFileSync(new URL('./node_modules/node-llama-cpp/package.json', import.meta.url))).version,
    llama_cpp_release: JSON.parse(fs.readFileSync(new URL('./node_modules/node-llama-cpp/llama/binariesGithubRelease.json', import.meta.url))).release,
    ids, windows, scored: count, mean_nll: mean, ppl, ppl_error: pplError, token_nll: tokenNll,
  };
  fs.writeFileSync(`${out}/perplexity-${name}.json`, JSON.stringify(record) + '\n');
  console.log(`${name}: ${ids.length} tokens, ${windows} windows of ${nCtx}, ${count} scored: PPL = ${ppl.toFixed(4)} +/- ${pplError.toFixed(5)}`);
  await ctx.dispose();
}
process.exit(0);  // disposing llama.cpp contexts can hang; nothing is left to flush
