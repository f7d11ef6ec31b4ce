#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "helpers.h"
#include "ingest/ingest.h"

using namespace saem;

static LoadedDocument load(const std::string &name) {
    std::string path = data_file(name);
    return load_document(read_bytes(path), format_for_path(path).value_or("txt"), path);
}

static std::string all_text(const LoadedDocument &d) { return document_text(d); }

TEST_CASE("formats are chosen by extension") {
    CHECK(format_for_path("a/b.TXT") == "txt");
    CHECK(format_for_path("x.markdown") == "md");
    CHECK(format_for_path("x.htm") == "html");
    CHECK(format_for_path("x.pdf") == "pdf");
    CHECK_FALSE(format_for_path("x.png").has_value());
    CHECK_FALSE(format_for_path("Makefile").has_value());
}

TEST_CASE("text: paragraphs at blank lines, title from the file name") {
    auto d = load("notes.txt");
    CHECK(d.title == "notes.txt");
    REQUIRE(d.blocks.size() == 3);
    CHECK(d.blocks[0].text == "Field notes");
    CHECK(d.blocks[1].text.find("9.5 degrees") != std::string::npos);
    CHECK(d.blocks[2].text == "Both samples were sent to the laboratory on Tuesday.");
}

TEST_CASE("markdown: front matter, heading paths, setext headings, fenced code is not a heading") {
    auto d = load("guide.md");
    CHECK(d.title == "Pump Guide");
    CHECK(d.metadata["author"] == "Kim Jiwoo");
    std::map<std::string, std::string> heading_of;
    for (const auto &b : d.blocks) heading_of[b.text.substr(0, 20)] = b.heading;
    CHECK(heading_of["Intro paragraph befo"] == "");
    CHECK(heading_of["Mount the pump on a "] == "Installation");
    CHECK(heading_of["Connect the brown wi"] == "Installation › Wiring");
    CHECK(heading_of["```sh\n# this is a co"] == "Installation › Wiring");
    CHECK(heading_of["Press the green butt"] == "Installation › Operation");
    CHECK(heading_of["A red light means th"] == "Installation › Operation › Faults");
    CHECK(all_text(d).find("---") == std::string::npos);
}

TEST_CASE("html: title, headings, entities decoded, script/style/nav dropped, pre kept") {
    auto d = load("page.html");
    CHECK(d.title == "Valve & Pipe Handbook");
    std::string text = all_text(d);
    for (const char *gone : {"script text", "color: red", "Site menu", "Chapter navigation", "Footer links", "Next chapter"}) {
        CAPTURE(gone);
        CHECK(text.find(gone) == std::string::npos);
    }
    CHECK(text.find("fluid — it is") != std::string::npos);                   // &mdash;
    CHECK(text.find("perforated ball\u00a0to control") != std::string::npos);  // &nbsp;
    CHECK(text.find("valve --open\n  --speed 3") != std::string::npos);        // <pre> verbatim
    bool ball_heading = false;
    for (const auto &b : d.blocks)
        if (b.text.find("quarter turn") != std::string::npos) ball_heading = b.heading == "Valves › Ball valves";
    CHECK(ball_heading);
}

TEST_CASE("pdf: text per page with page numbers and the document title") {
    auto d = load("report.pdf");
    CHECK(d.title == "Quarterly Water Report");
    CHECK(d.metadata["pages"] == 2);
    bool page1 = false, page2 = false;
    for (const auto &b : d.blocks) {
        if (b.text.find("82 percent") != std::string::npos) page1 = b.page == 1;
        if (b.text.find("sand filters") != std::string::npos) page2 = b.page == 2;
    }
    CHECK(page1);
    CHECK(page2);
    // Heading lines are paragraphs of their own, not the start of the next sentence.
    REQUIRE(d.blocks.size() == 4);
    CHECK(d.blocks[0].text == "Quarterly Water Report");
    CHECK(d.blocks[2].text == "Maintenance");
    CHECK(d.blocks[2].page == 2);
}

TEST_CASE("bad files give a one-line reason and never crash") {
    struct Case { const char *file; const char *reason; };
    const Case cases[] = {
        {"invalid_utf8.txt", "invalid UTF-8 at byte 12"},
        {"binary.txt", "binary content"},
        {"empty.txt", "empty file"},
        {"truncated.pdf", "PDF"},
        {"not_a_pdf.pdf", "not a PDF file"},
    };
    for (const auto &c : cases) {
        CAPTURE(c.file);
        try {
            load(c.file);
            FAIL("expected a LoadError");
        } catch (const LoadError &e) {
            std::string msg = e.what();
            CHECK(msg.find(c.reason) != std::string::npos);
            CHECK(msg.find('\n') == std::string::npos);
        }
    }
}

TEST_CASE("normalisation: CRLF, BOM, control characters, NFC") {
    std::string src = "\xEF\xBB\xBF" "Cafe\xCC\x81 line\r\nnext\x01 line\r\n";
    auto d = load_document(src, "txt", "x.txt");
    REQUIRE(d.blocks.size() == 1);
    CHECK(d.blocks[0].text == "Caf\xC3\xA9 line\nnext line");
}
