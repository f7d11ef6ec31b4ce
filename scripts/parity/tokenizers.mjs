// Writes tests/fixtures/tokenizers/<model>.<set>.tsv: for every passage, the count and FNV-1a
// fingerprint of the token ids Hugging Face's tokenizer (transformers.js, local files only)
// gives it, with [CLS]/[SEP].
//   npm install --ignore-scripts && node tokenizers.mjs ../../../shared [korean-passages.txt]
import { AutoTokenizer, env } from '@huggingface/transformers';
import fs from 'fs';
import path from 'path';
import { scifact, squad, lines, fingerprint } from './passages.mjs';

env.allowRemoteModels = false;
const shared = path.resolve(process.argv[2] ?? '../../../shared');
const korean = process.argv[3];
const out = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../tests/fixtures/tokenizers');
const sets = { scifact: scifact(shared), squad: squad(shared) };
if (korean) sets.korean = lines(korean);

for (const model of ['all-MiniLM-L6-v2', 'ms-marco-MiniLM-L-12-v2']) {
  const tok = await AutoTokenizer.from_pretrained(`${shared}/models/${model}`, { local_files_only: true });
  for (const [name, passages] of Object.entries(sets)) {
    const rows = passages.map((p) => {
      const ids = tok.encode(p);
      return `${ids.length}\t${fingerprint(ids)}`;
    });
    fs.writeFileSync(`${out}/${model}.${name}.tsv`, rows.join('\n') + '\n');
    console.log(`${model} ${name}: ${rows.length} passages`);
  }
}
