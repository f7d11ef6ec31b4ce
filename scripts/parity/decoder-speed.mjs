// llama.cpp's side of bench/run-decoder: pp512 (one 512-token prompt pass) and tg128 (128 greedy
// tokens one at a time) on a GGUF with node-llama-cpp's prebuilt CPU build, best of three, taken
// from llama.cpp's own performance counters (llama_perf_context_print), which exclude the
// JavaScript that node-llama-cpp runs around every generated token. Prints JSON.
//   node decoder-speed.mjs MODEL.gguf [THREADS]
import { getLlama } from 'node-llama-cpp';

const [modelPath, threadsArg] = process.argv.slice(2);
const threads = Number(threadsArg ?? 2);
let perf = [];
const llama = await getLlama({
  build: 'never', gpu: false, logLevel: 'info',
  logger: (level, message) => { if (message.includes('llama_perf_context_print')) perf.push(message); },
});
const model = await llama.loadModel({ modelPath });
const prompt = Array.from({ length: 512 }, (_, i) => 3 + (i * 7919) % 500);
let pp = 0, tg = 0;
const rate = (line) => Number(/([\d.]+) tokens per second/.exec(line)[1]);
for (let run = 0; run < 4; ++run) {
  // A fresh context per run resets the counters; run 0 pages the weights in and is not counted.
  const ctx = await model.createContext({ contextSize: 1024, batchSize: 512, threads, flashAttention: false, performanceTracking: true });
  const seq = ctx.getSequence();
  let n = 0;
  for await (const token of seq.evaluate(prompt, { temperature: 0 })) if (++n === 129) break;
  perf = [];
  await ctx.printTimings();
  await new Promise((r) => setTimeout(r, 200));
  if (run > 0) {
    pp = Math.max(pp, rate(perf.find((l) => l.includes('prompt eval time'))));
    tg = Math.max(tg, rate(perf.find((l) => l.includes(' eval time') && !l.includes('prompt'))));
  }
  await ctx.dispose();
}
console.log(JSON.stringify({ pp512: pp, tg128: tg, threads }));
process.exit(0);
