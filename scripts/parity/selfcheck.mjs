// How well llama.cpp agrees with itself on the random-weight fixtures: the same GGUF, prompts fed
// one token at a time (batch 1) on 1 thread instead of one batch on 2 threads. Prints, per model,
// how many free-running greedy continuations stay identical for all 32 tokens and the largest
// top-1 logit difference, to put saem's figures beside.
//   node selfcheck.mjs /tmp/dec smollm2-q8_0 ...
import { getLlama } from 'node-llama-cpp';
import fs from 'fs';
import path from 'path';

const dir = path.resolve(process.argv[2] ?? '/tmp/dec');
const fixtures = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../tests/fixtures/decoder');
const llama = await getLlama({ build: 'never', gpu: false });
for (const name of process.argv.slice(3)) {
  const fx = JSON.parse(fs.readFileSync(`${fixtures}/${name}.json`, 'utf8'));
  const model = await llama.loadModel({ modelPath: `${dir}/${name}.gguf` });
  const ctx = await model.createContext({ contextSize: 512, batchSize: 1, threads: 1, flashAttention: false });
  const seq = ctx.getSequence();
  const want = { generateNext: { logits: { filter: { tokens: [], includeTop: 1 } } } };
  let identical = 0, worst = 0, leading = 0;
  for (const c of fx.cases) {
    await seq.clearHistory();
    const got = [];
    let res;
    for (let i = 0; i < c.ids.length; ++i) res = await seq.controlledEvaluate([i === c.ids.length - 1 ? [c.ids[i], want] : c.ids[i]]);
    for (let s = 0; s < c.generated.length; ++s) {
      const [token, logit] = [...res[res.length - 1].next.logits.entries()][0];
      got.push(token);
      if (got.every((t, k) => t === c.generated[k])) worst = Math.max(worst, Math.abs(logit - c.top[s][0][1]));
      res = await seq.controlledEvaluate([[token, want]]);
    }
    let k = 0;
    while (k < got.length && got[k] === c.generated[k]) ++k;
    leading += k;
    if (k === got.length) ++identical;
  }
  console.log(`${name}: llama.cpp batch 1 / 1 thread vs batch 512 / 2 threads: ${identical}/${fx.cases.length} identical, ${leading} leading tokens equal, largest top-1 logit difference while identical ${worst.toFixed(4)}`);
  await ctx.dispose();
}
process.exit(0);
