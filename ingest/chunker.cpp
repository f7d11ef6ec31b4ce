#include "ingest/ingest.h"

#include <algorithm>

namespace saem {

namespace {

struct Unit {
    size_t begin, end;  // byte span in the document text
    size_t tokens;
};

bool is_space(char c) { return c == ' ' || c == '\n' || c == '\t'; }

// Cuts a span that is over budget at spaces, and a single over-long word at character boundaries,
// into units that each fit.
void split_long(std::string_view text, size_t begin, size_t end, size_t budget, const nn::TokenCounter &counter,
                std::vector<Unit> &out) {
    size_t piece_begin = begin, piece_tokens = 0, i = begin;
    auto emit = [&](size_t e) {
        while (e > piece_begin && is_space(text[e - 1])) --e;
        if (e > piece_begin) out.push_back({piece_begin, e, counter.count(text.substr(piece_begin, e - piece_begin))});
    };
    while (i < end) {
        size_t word_end = i;
        while (word_end < end && !is_space(text[word_end])) ++word_end;
        size_t word_tokens = counter.count(text.substr(i, word_end - i));
        if (word_tokens > budget) {
            emit(i);
            // Count character by character: never above what the whole word would cost per piece.
            size_t b = i, tokens = 0;
            for (size_t c = i; c < word_end;) {
                size_t n = std::min(nn::utf8_length(static_cast<unsigned char>(text[c])), word_end - c);
                size_t t = counter.count(text.substr(c, n));
                if (tokens + t > budget && c > b) {
                    out.push_back({b, c, tokens});
                    b = c;
                    tokens = 0;
                }
                tokens += t;
                c += n;
            }
            piece_begin = b;
            piece_tokens = tokens;
        } else if (piece_tokens + word_tokens > budget && i > piece_begin) {
            emit(i);
            piece_begin = i;
            piece_tokens = word_tokens;
        } else {
            piece_tokens += word_tokens;
        }
        i = word_end;
        while (i < end && is_space(text[i])) ++i;
    }
    emit(end);
}

std::string full_heading(const std::string &title, const std::string &heading) {
    if (heading.empty()) return title;
    if (title.empty() || heading.rfind(title, 0) == 0) return heading;
    return title + " › " + heading;
}

}  // namespace

std::string document_text(const LoadedDocument &doc) {
    std::string text;
    for (const Block &b : doc.blocks) {
        if (!text.empty()) text += "\n\n";
        text += b.text;
    }
    return text;
}

std::vector<ChunkInput> chunk_document(const LoadedDocument &doc, const ChunkOptions &opt) {
    static const nn::ApproxTokenCounter approx;
    const nn::TokenCounter &counter = opt.counter ? *opt.counter : approx;
    const size_t budget = size_t(std::max(opt.max_tokens, 1));
    const size_t overlap = size_t(std::max(opt.overlap_tokens, 0));
    const std::string text = document_text(doc);
    std::string_view tv = text;

    std::vector<ChunkInput> chunks;
    size_t offset = 0, b = 0;
    while (b < doc.blocks.size()) {
        // A section: consecutive blocks under the same heading on the same page.
        size_t e = b;
        std::vector<Unit> units;
        size_t block_offset = offset;
        while (e < doc.blocks.size() && doc.blocks[e].heading == doc.blocks[b].heading &&
               doc.blocks[e].page == doc.blocks[b].page) {
            const std::string &bt = doc.blocks[e].text;
            for (auto [s, t] : nn::split_sentences(bt)) {
                size_t tokens = counter.count(std::string_view(bt).substr(s, t - s));
                if (tokens <= budget) units.push_back({block_offset + s, block_offset + t, tokens});
                else split_long(tv, block_offset + s, block_offset + t, budget, counter, units);
            }
            block_offset += bt.size() + 2;
            ++e;
        }
        std::string heading = full_heading(doc.title, doc.blocks[b].heading);
        int page = doc.blocks[b].page;

        size_t start = 0;
        while (start < units.size()) {
            size_t end = start, tokens = 0;
            while (end < units.size() && tokens + units[end].tokens <= budget) tokens += units[end++].tokens;
            if (end == start) tokens = units[end++].tokens;  // cannot happen: every unit fits the budget
            ChunkInput c;
            c.begin = int64_t(units[start].begin);
            // A real tokenizer is not additive (the whitespace between sentences may cost tokens):
            // the joined text is what must fit.
            for (;;) {
                c.end = int64_t(units[end - 1].end);
                c.text = text.substr(size_t(c.begin), size_t(c.end - c.begin));
                c.tokens = int(counter.count(c.text));
                if (size_t(c.tokens) <= budget || end - 1 == start) break;
                --end;
            }
            c.heading = heading;
            c.page = page;
            chunks.push_back(std::move(c));
            if (end == units.size()) break;
            // Carry whole trailing sentences into the next chunk, as long as the next new
            // sentence still fits beside them.
            size_t next = end, carried = 0;
            while (next - 1 > start && carried + units[next - 1].tokens <= overlap &&
                   carried + units[next - 1].tokens + units[end].tokens <= budget) {
                carried += units[--next].tokens;
            }
            start = next;
        }
        offset = block_offset;
        b = e;
    }
    return chunks;
}

}  // namespace saem
