#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpora into tests/fuzz/corpus/<target>/: small valid inputs of
each format, so the fuzzer starts deep inside the parsers. Model seeds are tiny models written
here in the real layouts (GGUF v3 llama and BERT, safetensors); tokenizer seeds are cut from the
real tokenizer.json files in ../shared/models. Run from anywhere: python3 tests/fuzz/make_seeds.py"""
import json, os, pathlib, random, shutil, struct

here = pathlib.Path(__file__).resolve().parent
root = here.parent.parent
shared = root.parent / "shared" / "models"
corpus = here / "corpus"
rng = random.Random(7)

def out(target, name, data):
    d = corpus / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data if isinstance(data, bytes) else data.encode())

# ---- GGUF v3 ------------------------------------------------------------------------------------
U32, I32, F32, BOOL, STRING, ARRAY, U64 = 4, 5, 6, 7, 8, 9, 10
T_F32, T_F16, T_Q8_0 = 0, 1, 8

def gstr(s):
    b = s.encode()
    return struct.pack("<Q", len(b)) + b

def kv(key, typ, value):
    b = gstr(key) + struct.pack("<I", typ)
    if typ == STRING: return b + gstr(value)
    if typ == U32: return b + struct.pack("<I", value)
    if typ == I32: return b + struct.pack("<i", value)
    if typ == F32: return b + struct.pack("<f", value)
    if typ == BOOL: return b + struct.pack("<?", value)
    if typ == ARRAY:
        et, items = value
        b += struct.pack("<IQ", et, len(items))
        for it in items:
            b += gstr(it) if et == STRING else struct.pack({F32: "<f", I32: "<i", U32: "<I"}[et], it)
        return b
    raise ValueError(typ)

def tensor_bytes(typ, rows, cols):
    n = rows * cols
    if typ == T_F32: return struct.pack(f"<{n}f", *[rng.uniform(-0.5, 0.5) for _ in range(n)])
    if typ == T_F16: return struct.pack(f"<{n}e", *[rng.uniform(-0.5, 0.5) for _ in range(n)])
    if typ == T_Q8_0:  # blocks of 32: f16 scale, 32 int8
        b = b""
        for _ in range(n // 32):
            b += struct.pack("<e", 0.01) + bytes(rng.randrange(256) for _ in range(32))
        return b
    raise ValueError(typ)

def gguf(kvs, tensors):
    """tensors: (name, type, shape as [rows, cols] or [n]); GGUF stores dims innermost first."""
    head = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kvs)) + b"".join(kvs)
    data, infos = b"", b""
    for name, typ, shape in tensors:
        dims = list(reversed(shape))
        infos += gstr(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims)
        infos += struct.pack("<IQ", typ, len(data))
        rows, cols = (shape[0], shape[1]) if len(shape) == 2 else (1, shape[0])
        data += tensor_bytes(typ, rows, cols)
        data += b"\0" * (-len(data) % 32)
    h = head + infos
    return h + b"\0" * (-len(h) % 32) + data

def llama_seed():
    E, F, V = 32, 64, 8
    tokens = ["<unk>", "<s>", "</s>", "\u2581a", "\u2581b", "a", "b", "\u2581"]
    kvs = [kv("general.architecture", STRING, "llama"), kv("general.name", STRING, "fuzz-llama"),
           kv("llama.embedding_length", U32, E), kv("llama.block_count", U32, 1), kv("llama.feed_forward_length", U32, F),
           kv("llama.attention.head_count", U32, 2), kv("llama.attention.head_count_kv", U32, 1),
           kv("llama.context_length", U32, 64), kv("llama.rope.dimension_count", U32, 16),
           kv("llama.attention.layer_norm_rms_epsilon", F32, 1e-5),
           kv("tokenizer.ggml.model", STRING, "llama"), kv("tokenizer.ggml.tokens", ARRAY, (STRING, tokens)),
           kv("tokenizer.ggml.scores", ARRAY, (F32, [0.0, 0.0, 0.0, -1.0, -2.0, -3.0, -4.0, -5.0])),
           kv("tokenizer.ggml.token_type", ARRAY, (I32, [2, 3, 3, 1, 1, 1, 1, 1])),
           kv("tokenizer.ggml.bos_token_id", U32, 1), kv("tokenizer.ggml.eos_token_id", U32, 2),
           kv("tokenizer.ggml.unknown_token_id", U32, 0)]
    t = [("token_embd.weight", T_F16, [V, E]), ("output_norm.weight", T_F32, [E]),
         ("blk.0.attn_norm.weight", T_F32, [E]), ("blk.0.attn_q.weight", T_Q8_0, [E, E]),
         ("blk.0.attn_k.weight", T_F32, [16, E]), ("blk.0.attn_v.weight", T_F32, [16, E]),
         ("blk.0.attn_output.weight", T_F32, [E, E]), ("blk.0.ffn_norm.weight", T_F32, [E]),
         ("blk.0.ffn_gate.weight", T_Q8_0, [F, E]), ("blk.0.ffn_up.weight", T_F32, [F, E]),
         ("blk.0.ffn_down.weight", T_F32, [E, F])]
    return gguf(kvs, t)

def bert_seed():
    E, F, P = 32, 64, 16
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "\u2581a", "b", "\u2581hello", "\u2581world"]
    kvs = [kv("general.architecture", STRING, "bert"), kv("general.name", STRING, "fuzz-bert"),
           kv("bert.embedding_length", U32, E), kv("bert.block_count", U32, 1), kv("bert.feed_forward_length", U32, F),
           kv("bert.attention.head_count", U32, 2), kv("bert.context_length", U32, P),
           kv("bert.attention.layer_norm_epsilon", F32, 1e-12), kv("bert.pooling_type", U32, 1),
           kv("tokenizer.ggml.model", STRING, "bert"), kv("tokenizer.ggml.tokens", ARRAY, (STRING, tokens)),
           kv("tokenizer.ggml.token_type_count", U32, 2), kv("tokenizer.ggml.unknown_token_id", U32, 1),
           kv("tokenizer.ggml.cls_token_id", U32, 2), kv("tokenizer.ggml.seperator_token_id", U32, 3),
           kv("tokenizer.ggml.padding_token_id", U32, 0)]
    t = [("token_embd.weight", T_F16, [len(tokens), E]), ("position_embd.weight", T_F32, [P, E]),
         ("token_types.weight", T_F32, [2, E]), ("token_embd_norm.weight", T_F32, [E]), ("token_embd_norm.bias", T_F32, [E])]
    for n in ["attn_q", "attn_k", "attn_v", "attn_output"]:
        t += [(f"blk.0.{n}.weight", T_Q8_0 if n == "attn_q" else T_F32, [E, E]), (f"blk.0.{n}.bias", T_F32, [E])]
    t += [("blk.0.attn_output_norm.weight", T_F32, [E]), ("blk.0.attn_output_norm.bias", T_F32, [E]),
          ("blk.0.ffn_up.weight", T_F32, [F, E]), ("blk.0.ffn_up.bias", T_F32, [F]),
          ("blk.0.ffn_down.weight", T_F32, [E, F]), ("blk.0.ffn_down.bias", T_F32, [E]),
          ("blk.0.layer_output_norm.weight", T_F32, [E]), ("blk.0.layer_output_norm.bias", T_F32, [E])]
    return gguf(kvs, t)

def safetensors_seed():
    tensors = {"embeddings": ("F32", [4, 3]), "weights": ("F16", [4]), "scale": ("I8", [8]), "position_ids": ("I64", [1, 2])}
    size = {"F32": 4, "F16": 2, "I8": 1, "I64": 8}
    header, data = {"__metadata__": {"format": "pt"}}, b""
    for name, (dt, shape) in tensors.items():
        n = size[dt]
        for s in shape: n *= s
        header[name] = {"dtype": dt, "shape": shape, "data_offsets": [len(data), len(data) + n]}
        data += bytes(rng.randrange(256) for _ in range(n))
    h = json.dumps(header).encode()
    return struct.pack("<Q", len(h)) + h + data

def cut_tokenizer(path, keep):
    j = json.loads(pathlib.Path(path).read_text())
    vocab = j["model"]["vocab"]
    j["model"]["vocab"] = {t: i for t, i in vocab.items() if i < keep}
    if "merges" in j["model"]:
        kept = []
        for m in j["model"]["merges"]:
            l, r = m.split(" ", 1) if isinstance(m, str) else m
            if l in j["model"]["vocab"] and r in j["model"]["vocab"] and (l + r) in j["model"]["vocab"]:
                kept.append(m)
        j["model"]["merges"] = kept
    j["added_tokens"] = [a for a in j.get("added_tokens", []) if a["id"] < keep]
    return json.dumps(j, ensure_ascii=False)

def main():
    if corpus.exists(): shutil.rmtree(corpus)
    out("gguf", "llama-sentencepiece.gguf", llama_seed())
    out("gguf", "bert-wordpiece.gguf", bert_seed())
    out("safetensors", "four-dtypes.safetensors", safetensors_seed())
    out("tokenizer_json", "wordpiece-minilm-cut.json", cut_tokenizer(shared / "all-MiniLM-L6-v2" / "tokenizer.json", 1100))
    out("tokenizer_json", "bpe-smollm2-cut.json", cut_tokenizer(shared / "SmolLM2-135M-Instruct" / "tokenizer.json", 400))
    out("tokenizer_json", "bpe-qwen2-cut.json", cut_tokenizer(shared / "Qwen2.5-Instruct-tokenizer" / "tokenizer.json", 400))
    texts = ["How does BM25 rank documents?", "Ünïcödé façade — naïve café", "샘과 우물은 어떻게 다른가?",
             "emoji \U0001F600 and <|im_start|>user\n", "tab\tcontrol\x01\x7f chars", "don't  stop   --  e.g. U.S.A.",
             "日本語の文章と中文混合", "x" * 300]
    for i, t in enumerate(texts):
        for target in ["wordpiece", "bpe"]: out(target, f"text-{i}", t)
        out("wordpiece", f"split-{i}", bytes([len(t) // 2 % 256]) + t.encode())
    queries = ['"write ahead" log', "NOT OR AND NEAR(a b)", "col:value ^start* -minus +plus", "(unbalanced \"quote",
               "한국어 검색", "BM25 ranks documents", "***", "a AND", "\"\"", "{x y}: z", "term1 term2 OR term3"]
    for i, q in enumerate(queries): out("fts_query", f"query-{i}", q)
    bodies = [{"query": "bm25", "k": 3}, {"query": "tides", "mode": "hybrid", "mmr": 0.5, "rerank": True},
              {"question": "what is WAL?", "k": 5, "filter": {"path": "docs/", "meta": {"lang": "en"}}},
              {"query": "x", "filter": {"metadata": {"a": 1}}, "mmr": True}, {"query": "", "k": 0},
              {"query": "y", "candidates": 50, "snippets": False}]
    for i, b in enumerate(bodies):
        out("request", f"body-{i}", bytes([i & 1]) + json.dumps(b).encode())
    for f in (root / "samples").iterdir():
        target = {".html": "html", ".md": "markdown", ".pdf": "pdf"}.get(f.suffix)
        if target: out(target, f.name, f.read_bytes())
    out("html", "nested-table.html", "<html><head><title>T</title><script>var x='</div>';</script></head><body><h1>A</h1>"
        "<table><tr><td><p>cell<div>deep<span>er</span></div></td></tr></table><pre>code\n  kept</pre><!-- c --></body></html>")
    out("markdown", "everything.md", "# Title\n\nPara *em* **strong** `code`.\n\n## Sub\n\n- item\n  - nested\n\n> quote\n\n"
        "```python\nx = 1\n```\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n[link](http://x) ![img](y.png)\n\nSetext\n===\n")

main()
