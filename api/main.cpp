// The saem command line.
#include "api/api.h"

#include <unistd.h>

#include <csignal>
#include <cstring>
#include <iomanip>
#include <iostream>
#include <filesystem>
#include <map>
#include <optional>
#include <set>

namespace {

using nlohmann::json;

const char *usage = R"(saem: a retrieval-augmented answer engine over your documents

usage:
  saem index DIR [--db FILE] [--include GLOB]... [--exclude GLOB]... [--chunk-tokens N] [--overlap N]
                 [--encoder PATH | --no-encoder] [--vector-index flat|hnsw|ivfpq]
  saem search "QUERY" [--db FILE] [--k N] [--mode lexical|dense|hybrid] [--encoder PATH]
                 [--mmr LAMBDA] [--rerank PATH] [--path PREFIX] [--meta KEY=VALUE]... [--json]
  saem ask "QUESTION" [--db FILE] [--k N] [--mode ...] [--encoder PATH] [--rerank PATH] [--path PREFIX]
                 [--meta KEY=VALUE]... [--json] [--model FILE.gguf [generation flags as for generate]]
                 without --model (or SAEM_MODEL) the answer quotes the best sentences, with it a
                 decoder writes the answer from the retrieved sources, streaming, with [n] citations
  saem serve [--db FILE] [--host 127.0.0.1] [--port 8080] [--max-body-mb 32] [--encoder PATH | --no-encoder]
                 [--rerank PATH] [--model FILE.gguf [--template T] [--max-tokens 512] [--threads N] [--context N]]
  saem eval beir DIR [--db FILE] [--split test] [--mode lexical|dense|hybrid] [--encoder PATH]
                 [--keep-identical-ids] [--json]
  saem reembed --encoder PATH [--db FILE]    replace every vector with ones from another encoder
  saem models                               the encoders saem finds, and why others were rejected
  saem stats [--db FILE] [--json]
  saem tokenize --tokenizer PATH      token ids of each stdin line, as a JSON array per line (WordPiece
                 or a decoder's BPE: tokenizer.json, vocab.json + merges.txt, or a .gguf)
  saem generate --model FILE.gguf "PROMPT" [--chat [--system TEXT] [--template chatml|llama3]]
                 [--greedy] [--seed N] [--max-tokens N] [--temperature T] [--top-k N] [--top-p P]
                 [--min-p P] [--repeat-penalty R] [--stop TEXT]... [--threads N] [--context N]
                 streams the continuation (or, with --chat, the reply) to stdout; speeds to stderr
  saem embed --encoder PATH [--max-tokens N] [--batch 64]   embedding of each stdin line, as a JSON array per line

--db defaults to ./saem.db. Without --encoder, saem uses SAEM_ENCODER, the encoder the index was
built with, or the first usable model in SAEM_MODELS and the well-known model folders (saem models).
Search defaults to hybrid when the index has vectors and its encoder loads, lexical otherwise.
)";

struct Args {
    std::vector<std::string> positional;
    std::multimap<std::string, std::string> options;
    std::set<std::string> flags;

    std::string get(const std::string &name, const std::string &fallback = "") const {
        auto it = options.find(name);
        return it == options.end() ? fallback : it->second;
    }
    std::vector<std::string> all(const std::string &name) const {
        std::vector<std::string> out;
        for (auto [it, end] = options.equal_range(name); it != end; ++it) out.push_back(it->second);
        return out;
    }
    int get_int(const std::string &name, int fallback, int lo, int hi) const {
        auto it = options.find(name);
        if (it == options.end()) return fallback;
        try {
            size_t used = 0;
            int v = std::stoi(it->second, &used);
            if (used == it->second.size() && v >= lo && v <= hi) return v;
        } catch (...) {
        }
        throw std::invalid_argument("--" + name + " must be an integer from " + std::to_string(lo) + " to " + std::to_string(hi));
    }
};

const std::set<std::string> boolean_flags = {"json", "keep-identical-ids", "help", "no-encoder", "chat", "greedy"};

float get_float(const Args &a, const std::string &name, float fallback, float lo, float hi) {
    std::string v = a.get(name);
    if (v.empty()) return fallback;
    try {
        size_t used = 0;
        float f = std::stof(v, &used);
        if (used == v.size() && f >= lo && f <= hi) return f;
    } catch (...) {
    }
    throw std::invalid_argument("--" + name + " must be a number from " + std::to_string(lo) + " to " + std::to_string(hi));
}

Args parse(int argc, char **argv, int first) {
    Args a;
    for (int i = first; i < argc; ++i) {
        std::string s = argv[i];
        if (s.rfind("--", 0) == 0 && s.size() > 2) {
            std::string name = s.substr(2);
            if (auto eq = name.find('='); eq != std::string::npos) {
                a.options.emplace(name.substr(0, eq), name.substr(eq + 1));
            } else if (boolean_flags.count(name)) {
                a.flags.insert(name);
            } else {
                if (i + 1 >= argc) throw std::invalid_argument("--" + name + " needs a value");
                a.options.emplace(name, argv[++i]);
            }
        } else {
            a.positional.push_back(s);
        }
    }
    return a;
}

saem::Filter filter_from(const Args &a) {
    saem::Filter f;
    f.path_prefix = a.get("path");
    for (const auto &kv : a.all("meta")) {
        auto eq = kv.find('=');
        if (eq == std::string::npos) throw std::invalid_argument("--meta takes KEY=VALUE");
        f.metadata.emplace_back(kv.substr(0, eq), json(kv.substr(eq + 1)));
    }
    return f;
}

saem::ChunkOptions chunking_from(const Args &a) {
    saem::ChunkOptions c;
    c.max_tokens = a.get_int("chunk-tokens", c.max_tokens, 16, 8192);
    c.overlap_tokens = a.get_int("overlap", c.overlap_tokens, 0, c.max_tokens / 2);
    return c;
}

std::string location(const std::string &heading, int page) {
    std::string s = heading;
    if (page > 0) s += (s.empty() ? "" : ", ") + std::string("p. ") + std::to_string(page);
    return s;
}

saem::LoadedEncoder encoder_for(const Args &a, saem::Store *store) {
    if (a.flags.count("no-encoder")) return {};
    return saem::find_encoder(a.get("encoder"), store);
}

// The search mode asked for, or hybrid when the index has vectors and an encoder is at hand.
std::unique_ptr<saem::nn::Reranker> reranker_for(const Args &a) {
    return a.options.count("rerank") ? saem::nn::load_reranker(a.get("rerank")) : nullptr;
}

saem::SearchOptions search_options(const Args &a, saem::Store &store, saem::LoadedEncoder &enc) {
    saem::SearchOptions so;
    so.filter = filter_from(a);
    if (a.options.count("mmr")) {
        so.mmr = true;
        so.mmr_lambda = std::stod(a.get("mmr"));
        if (so.mmr_lambda < 0 || so.mmr_lambda > 1) throw std::invalid_argument("--mmr takes a lambda from 0 (diverse) to 1 (relevant)");
    }
    if (a.options.count("mode")) {
        so.mode = saem::parse_mode(a.get("mode"));
        if (so.mode != saem::SearchMode::lexical) {
            if (!enc.embedder) enc = encoder_for(a, &store);
            if (!enc.embedder) throw std::invalid_argument("--mode " + a.get("mode") + " needs an encoder: --encoder PATH");
        }
    } else if (store.has_vectors()) {
        if (!enc.embedder) enc = encoder_for(a, &store);
        if (enc.embedder) so.mode = saem::SearchMode::hybrid;
    }
    so.embedder = enc.embedder.get();
    return so;
}

int cmd_index(const Args &a) {
    if (a.positional.size() != 1) throw std::invalid_argument("index takes one folder");
    saem::Store store(a.get("db", "saem.db"));
    saem::IndexOptions opt;
    saem::LoadedEncoder enc = encoder_for(a, &store);
    if (enc.embedder) {
        std::cerr << "encoder: " << enc.path << " (" << enc.reason << ")\n";
        opt.embedder = enc.embedder.get();
        opt.embedder_path = enc.path;
    } else if (!a.flags.count("no-encoder")) {
        std::cerr << "no encoder configured: indexing for lexical search only (saem models tells why)\n";
    }
    if (a.options.count("vector-index")) {
        std::string kind = a.get("vector-index");
        if (kind != "flat" && kind != "hnsw" && kind != "ivfpq") throw std::invalid_argument("--vector-index is flat, hnsw or ivfpq");
        store.set_vector_index_kind(kind == "hnsw" ? saem::VectorIndexKind::hnsw
                                    : kind == "ivfpq" ? saem::VectorIndexKind::ivfpq : saem::VectorIndexKind::flat);
    }
    opt.include = a.all("include");
    opt.exclude = a.all("exclude");
    opt.chunking = chunking_from(a);
    opt.progress_bar = ::isatty(STDERR_FILENO);
    saem::index_folder(store, a.positional[0], opt, std::cerr);
    return 0;
}

int cmd_search(const Args &a) {
    if (a.positional.size() != 1) throw std::invalid_argument("search takes one quoted query");
    saem::Store store(a.get("db", "saem.db"));
    saem::LoadedEncoder enc;
    saem::SearchOptions so = search_options(a, store, enc);
    so.k = a.get_int("k", 10, 1, 1000);
    auto reranker = reranker_for(a);
    so.reranker = reranker.get();
    bool tty = ::isatty(STDOUT_FILENO);
    if (!a.flags.count("json") && tty) { so.mark_open = "\033[1m"; so.mark_close = "\033[0m"; }
    auto hits = store.search(a.positional[0], so);
    if (a.flags.count("json")) {
        json out = json::array();
        for (const auto &h : hits) out.push_back(saem::to_json(h));
        std::cout << json{{"query", a.positional[0]}, {"mode", saem::mode_name(so.mode)}, {"hits", out}}.dump(2, ' ', false, json::error_handler_t::replace) << '\n';
        return 0;
    }
    if (hits.empty()) {
        std::cout << "no matches for: " << a.positional[0] << '\n';
        return 0;
    }
    for (size_t i = 0; i < hits.size(); ++i) {
        const auto &h = hits[i];
        std::cout << i + 1 << ". " << h.path << "  (score " << std::fixed << std::setprecision(2) << h.score << ")\n";
        std::string where = location(h.heading, h.page);
        if (!where.empty()) std::cout << "   " << where << '\n';
        std::string snippet = h.snippet;
        for (char &c : snippet)
            if (c == '\n') c = ' ';
        std::cout << "   " << snippet << "\n\n";
    }
    return 0;
}

// The decoder of --model, else $SAEM_MODEL; null when neither is set.
std::unique_ptr<saem::nn::Decoder> decoder_for(const Args &a) {
    std::string path = a.get("model");
    if (path.empty())
        if (const char *env = std::getenv("SAEM_MODEL")) path = env;
    if (path.empty()) return nullptr;
    saem::nn::DecoderOptions dopt;
    dopt.threads = a.get_int("threads", 0, 0, 1024);
    dopt.context = a.get_int("context", dopt.context, 0, 1 << 20);
    return saem::nn::Decoder::load(path, dopt);
}

saem::GenerateOptions generation_from(const Args &a, int max_tokens) {
    saem::GenerateOptions o;
    o.max_tokens = a.get_int("max-tokens", max_tokens, 1, 1 << 20);
    o.stop = a.all("stop");
    auto &s = o.sampling;
    s.greedy = a.flags.count("greedy") > 0;
    s.seed = uint64_t(a.get_int("seed", 0, 0, 2147483647));
    s.temperature = get_float(a, "temperature", s.temperature, 0, 100);
    s.top_k = a.get_int("top-k", s.top_k, 0, 1 << 30);
    s.top_p = get_float(a, "top-p", s.top_p, 0, 1);
    s.min_p = get_float(a, "min-p", s.min_p, 0, 1);
    s.repeat_penalty = get_float(a, "repeat-penalty", s.repeat_penalty, 0.01f, 100);
    return o;
}

int cmd_ask(const Args &a) {
    if (a.positional.size() != 1) throw std::invalid_argument("ask takes one quoted question");
    saem::Store store(a.get("db", "saem.db"));
    saem::AnswerOptions ao;
    saem::LoadedEncoder enc;
    saem::SearchOptions so = search_options(a, store, enc);
    ao.k = a.get_int("k", ao.k, 1, 100);
    ao.filter = so.filter;
    ao.mode = so.mode;
    ao.embedder = so.embedder;
    auto reranker = reranker_for(a);
    ao.reranker = reranker.get();
    auto decoder = decoder_for(a);
    saem::Answer ans;
    const bool json_out = a.flags.count("json") > 0;
    if (decoder) {
        saem::GeneratedAnswerOptions go;
        go.generation = generation_from(a, 512);
        // An answer from sources is greedy unless a temperature is asked for.
        if (!a.options.count("temperature")) go.generation.sampling.greedy = true;
        go.chat_template = a.get("template");
        // The answer streams as it is generated; the sources follow it.
        ans = saem::answer_generated(store, *decoder, a.positional[0], ao, go, [&](std::string_view piece) {
            if (!json_out) std::cout << piece << std::flush;
            return true;
        });
        if (!json_out && !ans.found) std::cout << ans.text;
    } else {
        ans = saem::answer_extractive(store, a.positional[0], ao);
        if (!json_out) std::cout << ans.text;
    }
    if (json_out) {
        json out = saem::to_json(ans);
        out["question"] = a.positional[0];
        std::cout << out.dump(2, ' ', false, json::error_handler_t::replace) << '\n';
        return 0;
    }
    std::cout << "\n";
    if (!ans.citations.empty()) {
        std::cout << "\nSources:\n";
        for (const auto &c : ans.citations) {
            std::cout << "[" << c.number << "] " << c.path;
            std::string where = location(c.heading, c.page);
            if (!where.empty()) std::cout << " — " << where;
            std::cout << '\n';
        }
    }
    std::cout << "\n(" << ans.note << ")\n";
    return 0;
}

saem::Server *running_server = nullptr;

int cmd_serve(const Args &a) {
    saem::ServerOptions so;
    so.db = a.get("db", "saem.db");
    {
        saem::Store store(so.db);
        saem::LoadedEncoder enc = encoder_for(a, &store);
        if (enc.embedder) std::cerr << "encoder: " << enc.path << " (" << enc.reason << ")\n";
        so.embedder = std::move(enc.embedder);
        so.embedder_path = enc.path;
    }
    if (a.options.count("rerank")) so.reranker = saem::nn::load_reranker(a.get("rerank"));
    so.decoder = decoder_for(a);
    if (so.decoder) {
        std::cerr << "decoder: " << so.decoder->describe() << '\n';
        so.chat_template = a.get("template");
        so.max_answer_tokens = a.get_int("max-tokens", so.max_answer_tokens, 1, 8192);
    }
    so.max_body_bytes = size_t(a.get_int("max-body-mb", 32, 1, 4096)) << 20;
    std::string host = a.get("host", "127.0.0.1");
    int port = a.get_int("port", 8080, 0, 65535);
    saem::Server server(so);
    int bound = server.bind(host, port);
    if (bound < 0) throw std::runtime_error("cannot listen on " + host + ":" + std::to_string(port));
    running_server = &server;
    std::signal(SIGINT, [](int) { if (running_server) running_server->stop(); });
    std::signal(SIGTERM, [](int) { if (running_server) running_server->stop(); });
    std::cerr << "saem serving " << so.db << " on http://" << host << ":" << bound << std::endl;
    server.listen();
    running_server = nullptr;
    return 0;
}

int cmd_eval(const Args &a) {
    if (a.positional.size() != 2 || a.positional[0] != "beir") throw std::invalid_argument("usage: saem eval beir DIR");
    saem::BeirOptions bo;
    bo.db = a.get("db");
    bo.split = a.get("split", "test");
    bo.ignore_identical_ids = !a.flags.count("keep-identical-ids");
    bo.chunking = chunking_from(a);
    if (a.options.count("heading-weight")) bo.heading_weight = std::stod(a.get("heading-weight"));
    bo.mode = saem::parse_mode(a.get("mode", "lexical"));
    saem::LoadedEncoder enc;
    if (bo.mode != saem::SearchMode::lexical || a.options.count("encoder")) {
        enc = encoder_for(a, nullptr);
        if (!enc.embedder) throw std::invalid_argument("--mode " + a.get("mode") + " needs an encoder: --encoder PATH");
        bo.embedder = enc.embedder.get();
        bo.embedder_path = enc.path;
    }
    // Fusion settings, for experiments; the defaults are saem's.
    if (a.options.count("lexical-weight")) bo.search.lexical_weight = std::stod(a.get("lexical-weight"));
    if (a.options.count("dense-weight")) bo.search.dense_weight = std::stod(a.get("dense-weight"));
    if (a.options.count("lexical-rrf-k")) bo.search.lexical_rrf_k = std::stod(a.get("lexical-rrf-k"));
    if (a.options.count("dense-rrf-k")) bo.search.dense_rrf_k = std::stod(a.get("dense-rrf-k"));
    saem::BeirResult r = saem::eval_beir(a.positional[1], bo, std::cerr);
    if (a.flags.count("json")) {
        std::cout << json{{"dataset", a.positional[1]}, {"mode", r.mode}, {"queries", r.queries}, {"documents", r.documents},
                          {"ndcg@10", r.ndcg10}, {"recall@100", r.recall100}, {"mrr@10", r.mrr10},
                          {"index_seconds", r.index_seconds}, {"search_seconds", r.search_seconds}}.dump(2) << '\n';
        return 0;
    }
    std::cout << std::fixed << std::setprecision(4) << "mode " << r.mode << ", queries " << r.queries << ", documents " << r.documents << '\n'
              << "nDCG@10    " << r.ndcg10 << '\n'
              << "Recall@100 " << r.recall100 << '\n'
              << "MRR@10     " << r.mrr10 << '\n'
              << std::setprecision(2) << "index " << r.index_seconds << " s, search " << r.search_seconds << " s ("
              << (r.queries ? 1000.0 * r.search_seconds / double(r.queries) : 0) << " ms/query)\n";
    return 0;
}

int cmd_tokenize(const Args &a) {
    std::string path = a.get("tokenizer");
    if (path.empty()) throw std::invalid_argument("tokenize needs --tokenizer PATH (tokenizer.json, vocab.txt, a model folder or a .gguf)");
    // A decoder vocabulary prints what the model is fed (BOS when it asks for one); WordPiece its
    // [CLS] ... [SEP] input.
    std::optional<saem::nn::Bpe> bpe;
    std::optional<saem::nn::WordPiece> wp;
    if (saem::nn::Bpe::is_bpe(path)) bpe = saem::nn::Bpe::load(path);
    else if (std::filesystem::path(path).extension() == ".gguf") wp = saem::nn::WordPiece::from_gguf(saem::nn::Gguf(path));
    else wp = saem::nn::WordPiece::load(path);
    std::string line, out;
    while (std::getline(std::cin, line)) {
        out = "[";
        for (int32_t id : bpe ? saem::raw_prompt(*bpe, line) : wp->encode_for_model(line, {}, size_t(1) << 30).ids) out += std::to_string(id) + ",";
        if (out.size() > 1) out.pop_back();
        out += "]\n";
        std::cout << out;
    }
    return 0;
}

int cmd_generate(const Args &a) {
    if (a.positional.size() != 1) throw std::invalid_argument("generate takes one prompt (quote it)");
    auto decoder = decoder_for(a);
    if (!decoder) throw std::invalid_argument("generate needs --model FILE.gguf (or SAEM_MODEL)");
    const auto &bpe = decoder->tokenizer();
    std::vector<int32_t> prompt;
    if (a.flags.count("chat")) {
        auto format = saem::chat_format(bpe, a.get("template"));
        std::cerr << "saem: chat template " << saem::chat_format_name(format) << '\n';
        std::vector<saem::ChatMessage> messages;
        if (!a.get("system").empty()) messages.push_back({"system", a.get("system")});
        messages.push_back({"user", a.positional[0]});
        prompt = saem::chat_prompt(bpe, format, messages);
    } else {
        prompt = saem::raw_prompt(bpe, a.positional[0]);
        std::cout << a.positional[0] << std::flush;
    }
    saem::GenerateOptions o = generation_from(a, 256);
    std::cerr << "saem: " << decoder->describe() << '\n';
    auto g = saem::generate(*decoder, prompt, o, [](std::string_view piece) {
        std::cout << piece << std::flush;
        return true;
    });
    std::cout << '\n';
    std::cerr << std::fixed << std::setprecision(1) << "prompt " << g.prompt_tokens << " tokens, " << g.prompt_tokens_per_second()
              << " tokens/s; generated " << g.tokens.size() << " tokens, " << g.generation_tokens_per_second()
              << " tokens/s; stopped: " << g.stop_reason << '\n';
    return 0;
}

int cmd_embed(const Args &a) {
    std::string path = a.get("encoder");
    if (path.empty()) throw std::invalid_argument("embed needs --encoder PATH");
    auto embedder = saem::nn::load_embedder(path);
    if (a.options.count("max-tokens")) embedder->set_max_tokens(size_t(a.get_int("max-tokens", 512, 3, 1 << 20)));
    // Lines are embedded in batches (the encoder spreads a batch over the cores) and printed in order.
    const size_t batch = size_t(a.get_int("batch", 64, 1, 4096));
    const size_t dim = size_t(embedder->dim());
    std::vector<std::string> lines;
    std::vector<float> v;
    char buf[32];
    auto flush = [&] {
        v.resize(lines.size() * dim);
        embedder->embed(lines, v.data());
        std::string out;
        for (size_t i = 0; i < lines.size(); ++i) {
            out += '[';
            for (size_t k = 0; k < dim; ++k) {
                std::snprintf(buf, sizeof buf, "%.7g,", double(v[i * dim + k]));
                out += buf;
            }
            out.back() = ']';
            out += '\n';
        }
        std::cout << out;
        lines.clear();
    };
    for (std::string line; std::getline(std::cin, line);) {
        lines.push_back(std::move(line));
        if (lines.size() == batch) flush();
    }
    if (!lines.empty()) flush();
    return 0;
}

int cmd_models(const Args &) {
    std::cout << "model folders searched: ";
    for (const auto &f : saem::model_folders()) std::cout << f << "  ";
    std::cout << '\n';
    auto models = saem::list_models();
    if (models.empty()) std::cout << "no models found (put a model folder in one of them, or pass --encoder PATH)\n";
    for (const auto &m : models) std::cout << (m.usable ? "  usable    " : "  rejected  ") << m.path << ": " << m.description << '\n';
    return 0;
}

int cmd_reembed(const Args &a) {
    saem::Store store(a.get("db", "saem.db"));
    if (a.get("encoder").empty()) throw std::invalid_argument("reembed needs --encoder PATH");
    saem::LoadedEncoder enc = encoder_for(a, &store);
    store.clear_vectors();
    size_t n = saem::embed_missing(store, *enc.embedder, enc.path);
    saem::build_vector_index(store);
    std::cerr << "re-embedded " << n << " chunks with " << enc.embedder->identity() << '\n';
    return 0;
}

int cmd_stats(const Args &a) {
    saem::Store store(a.get("db", "saem.db"));
    json s = saem::to_json(store.stats());
    std::cout << (a.flags.count("json") ? s.dump(2) : s.dump()) << '\n';
    return 0;
}

}  // namespace

int main(int argc, char **argv) {
    if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "help")) {
        std::cout << usage;
        return argc < 2 ? 2 : 0;
    }
    std::string cmd = argv[1];
    try {
        Args a = parse(argc, argv, 2);
        if (a.flags.count("help")) { std::cout << usage; return 0; }
        if (cmd == "index") return cmd_index(a);
        if (cmd == "search") return cmd_search(a);
        if (cmd == "ask") return cmd_ask(a);
        if (cmd == "serve") return cmd_serve(a);
        if (cmd == "eval") return cmd_eval(a);
        if (cmd == "stats") return cmd_stats(a);
        if (cmd == "tokenize") return cmd_tokenize(a);
        if (cmd == "models") return cmd_models(a);
        if (cmd == "reembed") return cmd_reembed(a);
        if (cmd == "embed") return cmd_embed(a);
        if (cmd == "generate") return cmd_generate(a);
        std::cerr << "saem: unknown command '" << cmd << "'\n" << usage;
        return 2;
    } catch (const std::invalid_argument &e) {
        std::cerr << "saem " << cmd << ": " << e.what() << "\n";
        return 2;
    } catch (const std::exception &e) {
        std::cerr << "saem " << cmd << ": " << e.what() << "\n";
        return 1;
    }
}
