// Embeddings by llama.cpp (node-llama-cpp's prebuilt CPU build) of the first 500 SciFact passages,
// for the random-weight all-MiniLM-L6-v2-shaped GGUFs that tests/tools/make_test_encoder writes
// (seed 1234). Token ids come from Hugging Face's tokenizer (transformers.js), truncated to 128
// as Hugging Face truncates ([CLS] + 126 + [SEP]), so this compares the encoders alone.
// Writes tests/fixtures/encoder/minilm-random.<f32|f16|q8_0>.bin (500 x 384 float32, little-endian, as
// llama.cpp returns them: mean-pooled, not normalised) and meta.json.
//   node encoder.mjs ../../../shared /tmp/minilm    (after: make_test_encoder MODEL_DIR /tmp/minilm)
import { AutoTokenizer, env } from '@huggingface/transformers';
import { getLlama } from 'node-llama-cpp';
import fs from 'fs';
import path from 'path';
import { scifact } from './passages.mjs';

env.allowRemoteModels = false;
const shared = path.resolve(process.argv[2] ?? '../../../shared');
const models = process.argv[3] ?? '/tmp/minilm';
const out = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../tests/fixtures/encoder');
const count = 500, maxTokens = 128;
const types = process.argv[4] ? [process.argv[4]] : ['f32', 'f16', 'q8_0'];

const tok = await AutoTokenizer.from_pretrained(`${shared}/models/all-MiniLM-L6-v2`, { local_files_only: true });
const passages = scifact(shared).slice(0, count);
const ids = passages.map((p) => {
  const all = tok.encode(p);
  return all.length > maxTokens ? [...all.slice(0, maxTokens - 1), all[all.length - 1]] : all;
});

const llama = await getLlama({ build: 'never', gpu: false });
const metaFile = `${out}/meta.json`;
const meta = fs.existsSync(metaFile) ? JSON.parse(fs.readFileSync(metaFile, 'utf8'))
  : { passages: count, max_tokens: maxTokens, dim: 0, seed: 1234, files: {} };
for (const type of types) {
  const file = `${models}.${type}.gguf`;
  const model = await llama.loadModel({ modelPath: file });
  const ctx = await model.createEmbeddingContext({ contextSize: 512, batchSize: 512 });
  const rows = [];
  for (const t of ids) rows.push(Float32Array.from((await ctx.getEmbeddingFor(t)).vector));
  meta.dim = rows[0].length;
  const buf = Buffer.alloc(rows.length * meta.dim * 4);
  rows.forEach((r, i) => r.forEach((x, k) => buf.writeFloatLE(x, (i * meta.dim + k) * 4)));
  fs.writeFileSync(`${out}/minilm-random.${type}.bin`, buf);
  meta.files[type] = { bytes: fs.statSync(file).size };
  console.log(`${type}: ${rows.length} embeddings of ${meta.dim}`);
}
meta.node_llama_cpp = JSON.parse(fs.readFileSync(new URL('./node_modules/node-llama-cpp/package.json', import.meta.url))).version;
meta.llama_cpp_release = JSON.parse(fs.readFileSync(new URL('./node_modules/node-llama-cpp/llama/binariesGithubRelease.json', import.meta.url))).release;
fs.writeFileSync(metaFile, JSON.stringify(meta, null, 2) + '\n');
process.exit(0);  // disposing llama.cpp contexts can hang; nothing is left to flush
