// Writes tests/fixtures/tokenizers/<model>.<set>.tsv: for every passage, the count and FNV-1a
// fingerprint of the token ids Hugging Face's tokenizer (transformers.js, local files only)
// gives it, with its special tokens ([CLS]/[SEP] for BERT, <s> for TinyLlama, none for SmolLM2 and
// Qwen2.5); and <model>.llamacpp.<set>.tsv, the same for llama.cpp's tokenizer (node-llama-cpp) on
// the vocabulary GGUFs tests/tools/make_test_decoder writes (BOS prepended where the vocabulary
// asks for it, since node-llama-cpp's tokenize() adds none).
//   npm install --ignore-scripts && node tokenizers.mjs ../../../shared korean-passages.txt [GGUF_DIR]
//   (GGUF_DIR: make_test_decoder vocab smollm2-135m|qwen2.5-0.5b|tinyllama ... GGUF_DIR/vocab-NAME.gguf)
import { AutoTokenizer, env } from '@huggingface/transformers';
import { getLlama } from 'node-llama-cpp';
import os from 'os';
import fs from 'fs';
import path from 'path';
import { scifact, squad, lines, fingerprint } from './passages.mjs';

env.allowRemoteModels = false;
const shared = path.resolve(process.argv[2] ?? '../../../shared');
const korean = process.argv[3];
const out = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../tests/fixtures/tokenizers');
const sets = { scifact: scifact(shared), squad: squad(shared) };
if (korean) sets.korean = lines(korean);

const ggufDir = process.argv[4];

// transformers.js wants a tokenizer_config.json beside tokenizer.json; SmolLM2's folder has none.
function withConfig(model) {
  const dir = `${shared}/models/${model}`;
  if (fs.existsSync(`${dir}/tokenizer_config.json`)) return dir;
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tok-'));
  fs.copyFileSync(`${dir}/tokenizer.json`, `${tmp}/tokenizer.json`);
  fs.writeFileSync(`${tmp}/tokenizer_config.json`, '{}');
  return tmp;
}

for (const model of ['all-MiniLM-L6-v2', 'ms-marco-MiniLM-L-12-v2', 'SmolLM2-135M-Instruct', 'Qwen2.5-Instruct-tokenizer',
  'TinyLlama-1.1B-Chat-tokenizer']) {
  const tok = await AutoTokenizer.from_pretrained(withConfig(model), { local_files_only: true });
  for (const [name, passages] of Object.entries(sets)) {
    const rows = passages.map((p) => {
      const ids = tok.encode(p);
      return `${ids.length}\t${fingerprint(ids)}`;
    });
    fs.writeFileSync(`${out}/${model}.${name}.tsv`, rows.join('\n') + '\n');
    console.log(`${model} ${name}: ${rows.length} passages`);
  }
}

if (ggufDir) {
  const llama = await getLlama({ build: 'never', gpu: false });
  for (const [model, vocab] of [['SmolLM2-135M-Instruct', 'smollm2-135m'], ['Qwen2.5-Instruct-tokenizer', 'qwen2.5-0.5b'],
    ['TinyLlama-1.1B-Chat-tokenizer', 'tinyllama']]) {
    const m = await llama.loadModel({ modelPath: `${ggufDir}/vocab-${vocab}.gguf`, vocabOnly: true });
    const addBos = m.fileInfo.metadata.tokenizer.ggml.add_bos_token ?? false;
    for (const [name, passages] of Object.entries(sets)) {
      const rows = passages.map((p) => {
        const ids = [...(addBos ? [m.tokens.bos] : []), ...m.tokenize(p, false)];
        return `${ids.length}\t${fingerprint(ids)}`;
      });
      fs.writeFileSync(`${out}/${model}.llamacpp.${name}.tsv`, rows.join('\n') + '\n');
      console.log(`llama.cpp ${model} ${name}: ${rows.length} passages`);
    }
  }
  process.exit(0);  // disposing llama.cpp models can hang
}
