// api: what saem offers to programs: the HTTP server, BEIR evaluation, and the JSON shapes both
// share with the CLI.
//
// Threads: the JSON conversions and request parsers are pure functions (any thread). Model
// discovery (find_encoder, list_models) reads the environment and the file system and may be
// called from any thread. eval_beir runs on the calling thread. Server: see below.
#pragma once

#include "api/mcp.h"
#include "generator/generator.h"
#include "generator/router.h"
#include "ingest/ingest.h"
#include "retrieval/pipeline.h"
#include "retrieval/store.h"

#include <nlohmann/json.hpp>

#include <memory>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

namespace saem {

nlohmann::json to_json(const Hit &hit);
nlohmann::json to_json(const Answer &answer);
nlohmann::json to_json(const DocumentInfo &doc);
nlohmann::json to_json(const Stats &stats);
// Parses {"path_prefix": "...", "metadata": {"key": value}}; throws RequestError.
Filter filter_from_json(const nlohmann::json &filter);
// The retrieval fields every route that searches shares: text_field ("query" or "question", at
// most max_text bytes), "k" (1..max_k, default default_k), "mode", "filter", "mmr" (true or a
// lambda), "rerank". Throws RequestError (missing_field, invalid_field).
SearchRequest search_request_from_json(const nlohmann::json &body, const char *text_field, int default_k, int max_k,
                                       size_t max_text = 8192);
// What an answer retrieves with, whichever route asked: whole chunks (no snippets) and the
// question terms' idf, which the extractive answer weighs sentences by.
SearchRequest for_answers(SearchRequest request);

// ---- Models: which encoder to use.
struct ModelCandidate {
    std::string path;
    bool usable = false;
    std::string description;  // what it is, or why it was rejected
};
struct LoadedEncoder {
    std::unique_ptr<nn::Embedder> embedder;  // null when none was found
    std::string path, reason;
};
// The config file: $SAEM_CONFIG, else $XDG_CONFIG_HOME/saem/config.json, else
// ~/.config/saem/config.json; {"encoder": PATH, "model_folders": [DIR, ...], "router": {...}}, all
// optional (router: generator/router.h).
std::string config_path();
// Its contents ({} when there is none); throws std::runtime_error when it is not a JSON object.
nlohmann::json read_config();
// Model folders searched, in order: SAEM_MODELS (colon-separated), the config file's
// model_folders, ./models, ~/.local/share/saem/models, /usr/local/share/saem/models, /usr/share/saem/models.
std::vector<std::string> model_folders();
std::vector<ModelCandidate> list_models();
// An explicit path, else SAEM_ENCODER, else the encoder the store was built with (when it still
// loads with the same identity), else the config file's encoder, else the first usable model in
// model_folders().
LoadedEncoder find_encoder(const std::string &explicit_path, Store *store);

// One index the server serves, by name. Names are 1 to 64 of [A-Za-z0-9._-].
struct CollectionOptions {
    std::string name, db;
};

struct ServerOptions {
    // The indexes served. Every route takes a collection ("collection" in a JSON body or a form,
    // ?collection= on GET and DELETE; the OpenAI routes take it as "model"); a request that names
    // none gets the first. Empty: one collection, "default", at db.
    std::vector<CollectionOptions> collections;
    std::string db;
    size_t max_body_bytes = 32u << 20;  // larger bodies get 413, after inflation, chunked or not
    size_t max_query_bytes = 8192;      // a longer "query" or "question" gets 400
    int max_json_depth = 64;            // deeper nesting gets 400 before the body is parsed
    size_t max_headers = 100;           // more request headers get 431
    int read_timeout_seconds = 10, write_timeout_seconds = 10;
    int busy_timeout_ms = 5000;  // a write that waits longer for the database lock gets 503
    // Bearer keys any of which a client must send (Authorization: Bearer KEY); empty: no
    // authentication. /healthz is always open.
    std::vector<std::string> api_keys;
    // Origins (scheme://host[:port]) whose pages may call the API; a request with any other Origin
    // header is refused with 403 before its body is read.
    std::vector<std::string> cors_origins;
    ChunkOptions chunking;
    std::shared_ptr<const nn::Embedder> embedder;  // dense and hybrid search, and new documents' vectors
    std::string embedder_path;
    std::shared_ptr<const nn::Reranker> reranker;  // used when a request asks for "rerank": true
    // /v1/ask answers with this decoder when set. It holds one sequence, so answers are generated
    // one at a time, in arrival order, by a queue (generator/queue.h) admitting generation_queue
    // requests (the running one included); more get 429 with Retry-After. A client that hangs up
    // cancels its answer.
    std::shared_ptr<nn::Decoder> decoder;
    std::string decoder_name;  // its id in GET /v1/models (the model file's name); "" : its architecture
    size_t generation_queue = 4;
    size_t http_threads = 0;  // request workers; 0: max(8, generation_queue + 4)
    std::string chat_template;  // "", "chatml", "llama3"
    int max_answer_tokens = 512;
    // Generation on an OpenAI-compatible server (generator/remote.h), at most generation_queue at
    // once. When it fails before its answer starts, the local decoder answers, or else the
    // extractive answer, and the answer says so.
    std::shared_ptr<ChatModel> remote;
    // With both a decoder and a remote model: which one answers (generator/router.h).
    RouterOptions router;
    // Refuses every write: uploads and deletions over HTTP (403 read_only), MCP's add_document and
    // delete_document (not even listed).
    bool read_only = false;
};

// The HTTP API over its collections' index files. Each request opens its own connection to the store, so
// readers run while a write is in progress (SQLite WAL); writes are serialised. The constructor
// refuses (RequestError) an encoder other than the one the index's vectors were made with.
// Threads: construct, bind and listen on one thread; stop() from any thread (a signal handler).
class Server {
public:
    explicit Server(ServerOptions options);
    ~Server();
    // Binds; port 0 picks a free port. Returns the bound port, or -1.
    int bind(const std::string &host, int port);
    // Serves until stop() is called.
    bool listen();
    // Ends listen(): refuses new generated answers, cancels those under way, and stops the HTTP
    // server. Has no effect on a server not yet listening (see running()).
    void stop();
    bool running() const;  // listen() is serving
    // MCP (api/mcp.h) without HTTP, for `saem mcp` over stdio: one JSON-RPC message in, its reply
    // out (nullopt for a notification). Needs no bind() or listen(). Any thread; session as
    // mcp::handle says; call's cancel flag ends the tool call under way, its notify gets progress.
    std::optional<std::string> mcp(const std::string &message, mcp::Session &session, const mcp::Call &call = {});

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

struct BeirOptions {
    std::string db;  // empty: a temporary index, removed afterwards
    std::string split = "test";
    bool ignore_identical_ids = true;  // BEIR's rule: a hit whose id is the query's id is dropped
    double heading_weight = 2.0;
    ChunkOptions chunking;
    SearchMode mode = SearchMode::lexical;
    std::shared_ptr<const nn::Embedder> embedder;
    std::string embedder_path;
    Fusion fusion;  // for hybrid
};

struct BeirResult {
    size_t queries = 0, documents = 0;
    std::string mode;
    double ndcg10 = 0, recall100 = 0, mrr10 = 0;
    double index_seconds = 0, search_seconds = 0;
};

// Indexes DIR/corpus.jsonl (title + text), runs DIR/queries.jsonl against DIR/qrels/<split>.tsv.
BeirResult eval_beir(const std::string &dir, const BeirOptions &options, std::ostream &log);

struct QaOptions {
    std::string db;  // empty: a temporary index, removed afterwards
    int k = 5;       // chunks retrieved per question, as `saem ask`
    ChunkOptions chunking;
    ExtractiveOptions extractive;
    std::vector<std::string> unanswerable;  // questions the file's paragraphs cannot answer
    std::string sample = "all";             // all, or the even- or odd-numbered questions (tune on one, report the other)
    size_t limit = 0;                       // 0: every question
};

struct QaResult {
    size_t paragraphs = 0, questions = 0, unanswerable = 0;
    double exact_match = 0, f1 = 0;   // of the answer text against the best gold answer (SQuAD's normalisation)
    double gold_in_answer = 0;        // share of questions whose answer contains a gold answer
    double answered = 0;              // share of questions answered (found)
    double citation_accuracy = 0;     // of the answered, the share whose cited chunks hold a gold answer
    double abstain_rate = 0;          // share of the unanswerable questions answered with found: false
    double index_seconds = 0, answer_seconds = 0;
    // Per question: the answer's support (its best sentence's score; 0 when it abstained), and,
    // for the answerable, whether it held a gold answer: what an abstain threshold is chosen from.
    std::vector<std::pair<double, bool>> answerable_scores;
    std::vector<double> unanswerable_scores;
};

// Indexes the paragraphs of a SQuAD-format file (one document each), answers its questions and
// options.unanswerable extractively, and scores them.
QaResult eval_qa(const std::string &file, const QaOptions &options, std::ostream &log);

}  // namespace saem
