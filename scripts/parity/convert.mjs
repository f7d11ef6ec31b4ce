// The reference for `saem convert`: each Hugging Face folder that tests/tools/make_test_decoder
// writes (`hf` mode) is run here as Hugging Face's modeling code runs it (LlamaForCausalLM /
// Qwen2ForCausalLM: RMSNorm, rotate-half RoPE with the llama3 frequency scaling, grouped-query
// causal attention, SwiGLU; in double precision from the safetensors weights), on prompts
// tokenised by Hugging Face's tokenizer (transformers.js, local files). Then llama.cpp
// (node-llama-cpp) runs the GGUF `saem convert` made of the folder. For each prompt and position:
// the reference's 8 best logits (token, value) and llama.cpp's logits for the same tokens.
// Writes tests/fixtures/convert/<name>.json.
//   build/tests/make_test_decoder hf tiny-llama ../shared/models/SmolLM2-135M-Instruct /tmp/hf/tiny-llama
//   build/tests/make_test_decoder hf tiny-qwen2 ../shared/models/Qwen2.5-Instruct-tokenizer /tmp/hf/tiny-qwen2
//   build/tests/make_test_decoder hf tiny-tinyllama ../shared/models/TinyLlama-1.1B-Chat-tokenizer /tmp/hf/tiny-tinyllama
//   for m in tiny-llama tiny-qwen2 tiny-tinyllama; do build/saem convert /tmp/hf/$m /tmp/hf/$m.gguf --type f32; done
//   node convert.mjs /tmp/hf
import { AutoTokenizer, env } from '@huggingface/transformers';
import { getLlama } from 'node-llama-cpp';
import fs from 'fs';
import os from 'os';
import path from 'path';

env.allowRemoteModels = false;
const dir = path.resolve(process.argv[2] ?? '/tmp/hf');
const out = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../tests/fixtures/convert');
const names = process.argv.length > 3 ? process.argv.slice(3) : ['tiny-llama', 'tiny-qwen2', 'tiny-tinyllama'];
export const prompts = [
  'Once upon a time, there was a little girl named Lily.',
  'The capital of France is Paris, and',
  '서울은 대한민국의 수도이며',
];
const top = 8;

function readSafetensors(file) {
  const buf = fs.readFileSync(file);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8'));
  const base = 8 + n, tensors = {};
  for (const [name, t] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const [b, e] = t.data_offsets, count = t.shape.reduce((a, c) => a * c, 1), v = new Float64Array(count);
    for (let i = 0; i < count; ++i) {
      if (t.dtype === 'F32') v[i] = buf.readFloatLE(base + b + 4 * i);
      else if (t.dtype === 'BF16') { const f = Buffer.alloc(4); f.writeUInt16LE(buf.readUInt16LE(base + b + 2 * i), 2); v[i] = f.readFloatLE(0); }
      else throw new Error(`${name}: dtype ${t.dtype}`);
    }
    if (e - b !== count * (t.dtype === 'F32' ? 4 : 2)) throw new Error(`${name}: size`);
    tensors[name] = { shape: t.shape, v };
  }
  return tensors;
}

// y[r] = sum_c W[r][c] x[c] (+ b[r]): W is [rows, cols] as Hugging Face's Linear stores it.
function linear(W, x, b) {
  const [rows, cols] = W.shape, y = new Float64Array(rows);
  for (let r = 0; r < rows; ++r) {
    let s = b ? b.v[r] : 0;
    for (let c = 0; c < cols; ++c) s += W.v[r * cols + c] * x[c];
    y[r] = s;
  }
  return y;
}

function rmsNorm(x, w, eps) {
  let s = 0;
  for (const a of x) s += a * a;
  const k = 1 / Math.sqrt(s / x.length + eps);
  return x.map((a, i) => a * k * w.v[i]);
}

// Hugging Face's inverse frequencies, with _compute_llama3_parameters when rope_scaling asks.
function invFreq(cfg, hd) {
  const base = cfg.rope_theta ?? 10000;
  let f = Array.from({ length: hd / 2 }, (_, i) => 1 / Math.pow(base, (2 * i) / hd));
  const rs = cfg.rope_scaling;
  if (rs && rs.rope_type === 'llama3') {
    const lowWl = rs.original_max_position_embeddings / rs.low_freq_factor, highWl = rs.original_max_position_embeddings / rs.high_freq_factor;
    f = f.map((fr) => {
      const wl = (2 * Math.PI) / fr;
      if (wl < highWl) return fr;
      if (wl > lowWl) return fr / rs.factor;
      const smooth = (rs.original_max_position_embeddings / wl - rs.low_freq_factor) / (rs.high_freq_factor - rs.low_freq_factor);
      return (1 - smooth) * (fr / rs.factor) + smooth * fr;
    });
  }
  return f;
}

function forward(cfg, W, ids) {
  const d = cfg.hidden_size, H = cfg.num_attention_heads, KV = cfg.num_key_value_heads ?? H, hd = d / H, eps = cfg.rms_norm_eps;
  const freq = invFreq(cfg, hd);
  const rope = (x, p) => {  // x: one head; rotate_half: cat(-x2, x1)
    const o = new Float64Array(hd);
    for (let j = 0; j < hd; ++j) {
      const a = p * freq[j % (hd / 2)], rot = j < hd / 2 ? -x[j + hd / 2] : x[j - hd / 2];
      o[j] = x[j] * Math.cos(a) + rot * Math.sin(a);
    }
    return o;
  };
  const emb = W['model.embed_tokens.weight'];
  let h = ids.map((t) => emb.v.slice(t * d, (t + 1) * d));
  for (let l = 0; l < cfg.num_hidden_layers; ++l) {
    const p = `model.layers.${l}.`, g = (n) => W[p + n];
    const xs = h.map((x) => rmsNorm(x, g('input_layernorm.weight'), eps));
    const q = xs.map((x) => linear(g('self_attn.q_proj.weight'), x, g('self_attn.q_proj.bias')));
    const k = xs.map((x) => linear(g('self_attn.k_proj.weight'), x, g('self_attn.k_proj.bias')));
    const v = xs.map((x) => linear(g('self_attn.v_proj.weight'), x, g('self_attn.v_proj.bias')));
    const qr = q.map((x, t) => Array.from({ length: H }, (_, hh) => rope(x.slice(hh * hd, (hh + 1) * hd), t)));
    const kr = k.map((x, t) => Array.from({ length: KV }, (_, hh) => rope(x.slice(hh * hd, (hh + 1) * hd), t)));
    h = h.map((x, t) => {
      const att = new Float64Array(H * hd);
      for (let hh = 0; hh < H; ++hh) {
        const kvh = Math.floor(hh / (H / KV)), s = [];
        for (let u = 0; u <= t; ++u) { let dot = 0; for (let j = 0; j < hd; ++j) dot += qr[t][hh][j] * kr[u][kvh][j]; s.push(dot / Math.sqrt(hd)); }
        const m = Math.max(...s), e = s.map((a) => Math.exp(a - m)), z = e.reduce((a, c) => a + c, 0);
        for (let u = 0; u <= t; ++u) for (let j = 0; j < hd; ++j) att[hh * hd + j] += (e[u] / z) * v[u][kvh * hd + j];
      }
      const o = linear(g('self_attn.o_proj.weight'), att);
      const r = x.map((a, i) => a + o[i]);
      const y = rmsNorm(r, g('post_attention_layernorm.weight'), eps);
      const gate = linear(g('mlp.gate_proj.weight'), y), up = linear(g('mlp.up_proj.weight'), y);
      const act = gate.map((a, i) => (a / (1 + Math.exp(-a))) * up[i]);
      const down = linear(g('mlp.down_proj.weight'), act);
      return r.map((a, i) => a + down[i]);
    });
  }
  const head = cfg.tie_word_embeddings ? emb : W['lm_head.weight'];
  return h.map((x) => linear(head, rmsNorm(x, W['model.norm.weight'], eps)));
}

const llama = await getLlama({ build: 'never', gpu: false });
fs.mkdirSync(out, { recursive: true });
for (const name of names) {
  const folder = `${dir}/${name}`;
  const cfg = JSON.parse(fs.readFileSync(`${folder}/config.json`));
  const W = readSafetensors(`${folder}/model.safetensors`);
  let tokDir = folder;
  if (!fs.existsSync(`${folder}/tokenizer_config.json`)) {  // transformers.js wants one
    tokDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tok-'));
    fs.copyFileSync(`${folder}/tokenizer.json`, `${tokDir}/tokenizer.json`);
    fs.writeFileSync(`${tokDir}/tokenizer_config.json`, '{}');
  }
  const tok = await AutoTokenizer.from_pretrained(tokDir, { local_files_only: true });
  const model = await llama.loadModel({ modelPath: `${dir}/${name}.gguf` });
  const ctx = await model.createContext({ contextSize: 128, batchSize: 128, threads: 2, flashAttention: false });
  const seq = ctx.getSequence();
  const cases = [];
  for (const prompt of prompts) {
    const ids = tok.encode(prompt);
    const logits = forward(cfg, W, ids);
    const best = logits.map((row) => [...row.keys()].sort((a, b) => row[b] - row[a]).slice(0, top).map((t) => [t, row[t]]));
    await seq.clearHistory();
    const res = await seq.controlledEvaluate(ids.map((t) => [t, { generateNext: { logits: true } }]));
    const llamaCpp = best.map((row, p) => row.map(([t]) => res[p].next.logits.get(t)));
    cases.push({ prompt, ids, top: best, llama_cpp: llamaCpp });
  }
  const record = {
    folder: name, gguf: `${name}.gguf (saem convert --type f32)`,
    node_llama_cpp: JSON.parse(fs.readFileSync(new URL('./node_modules/node-llama-cpp/package.json', import.meta.url))).version,
    cases,
  };
  fs.writeFileSync(`${out}/${name}.json`, JSON.stringify(record) + '\n');
  let worst = 0;
  for (const c of cases) c.top.forEach((row, p) => row.forEach(([, v], i) => { worst = Math.max(worst, Math.abs(v - c.llama_cpp[p][i])); }));
  console.log(`${name}: ${cases.map((c) => c.ids.length).join('+')} tokens; llama.cpp vs reference, largest logit difference ${worst.toExponential(2)}`);
  await ctx.dispose();
}
process.exit(0);
