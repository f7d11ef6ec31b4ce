// llama.cpp's side of bench/run-encoder: embeds the passages of a file (one per line), token ids
// from Hugging Face's tokenizer truncated to 128, with the given GGUF and thread count, and prints
// passages per second (tokenization excluded).
//   node encoder-speed.mjs MODEL.gguf PASSAGES.txt SHARED [THREADS]
import { AutoTokenizer, env } from '@huggingface/transformers';
import { getLlama } from 'node-llama-cpp';
import fs from 'fs';

env.allowRemoteModels = false;
const [modelPath, passagesFile, shared, threadsArg] = process.argv.slice(2);
const threads = Number(threadsArg ?? 2), maxTokens = 128;
const tok = await AutoTokenizer.from_pretrained(`${shared}/models/all-MiniLM-L6-v2`, { local_files_only: true });
const ids = fs.readFileSync(passagesFile, 'utf8').split('\n').filter((l) => l.length).map((p) => {
  const all = tok.encode(p);
  return all.length > maxTokens ? [...all.slice(0, maxTokens - 1), all[all.length - 1]] : all;
});
const llama = await getLlama({ build: 'never', gpu: false });
const model = await llama.loadModel({ modelPath });
const ctx = await model.createEmbeddingContext({ contextSize: 512, batchSize: 512, threads });
await ctx.getEmbeddingFor(ids[0]);  // warm-up
const t0 = process.hrtime.bigint();
for (const t of ids) await ctx.getEmbeddingFor(t);
const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
console.log(JSON.stringify({ passages: ids.length, seconds, per_second: ids.length / seconds, threads }));
process.exit(0);
