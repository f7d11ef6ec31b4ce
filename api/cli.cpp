#include "api/cli.h"

#include <algorithm>
#include <numeric>

namespace saem::cli {

namespace {

const Option *find(const Command &c, const std::string &name) {
    for (const auto &o : c.options)
        if (o.name == name) return &o;
    return nullptr;
}

std::string suggestion(const Command &c, const std::string &name) {
    const Option *best = nullptr;
    size_t best_distance = 0;
    for (const auto &o : c.options) {
        size_t d = edit_distance(name, o.name);
        // A prefix ("--chunk" for "--chunk-tokens") is as good as a near miss.
        if (o.name.rfind(name, 0) == 0) d = std::min<size_t>(d, 1);
        if (!best || d < best_distance) best = &o, best_distance = d;
    }
    if (!best || best_distance > std::max<size_t>(2, name.size() / 3)) return "";
    return "; did you mean --" + best->name + "?";
}

}  // namespace

size_t edit_distance(const std::string &a, const std::string &b) {
    std::vector<size_t> row(b.size() + 1);
    std::iota(row.begin(), row.end(), size_t(0));
    for (size_t i = 1; i <= a.size(); ++i) {
        size_t diagonal = row[0];
        row[0] = i;
        for (size_t j = 1; j <= b.size(); ++j) {
            size_t above = row[j];
            row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
            diagonal = above;
        }
    }
    return row[b.size()];
}

Args parse(const Command &c, int argc, char **argv, int first) {
    Args a;
    bool operands_only = false;
    for (int i = first; i < argc; ++i) {
        std::string s = argv[i];
        if (operands_only) {
            a.operands.push_back(s);
            continue;
        }
        if (s == "--") {
            operands_only = true;
            continue;
        }
        if (s == "--help" || s == "-h") {
            a.help = true;
            continue;
        }
        if (s.size() < 3 || s.rfind("--", 0) != 0) {
            a.operands.push_back(s);
            continue;
        }
        std::string name = s.substr(2), value;
        bool inline_value = false;
        if (auto eq = name.find('='); eq != std::string::npos) {
            value = name.substr(eq + 1);
            name = name.substr(0, eq);
            inline_value = true;
        }
        const Option *o = find(c, name);
        if (!o) throw UsageError("unknown option --" + name + " for 'saem " + c.name + "'" + suggestion(c, name) +
                                 " (saem help " + c.name + ")");
        if (o->value.empty()) {
            if (inline_value) throw UsageError("--" + name + " takes no value");
            a.switches.push_back(name);
            continue;
        }
        if (!inline_value) {
            if (i + 1 >= argc) throw UsageError("--" + name + " needs a value (" + o->value + ")");
            // A forgotten value must not swallow the next option: "--path --json".
            std::string next = argv[i + 1];
            if (next == "--help" || (next.rfind("--", 0) == 0 && find(c, next.substr(2, next.find('=') - 2))))
                throw UsageError("--" + name + " needs a value (" + o->value + "), not the option " + next +
                                 "; write --" + name + "=VALUE for a value that starts with --");
            value = argv[++i];
        }
        if (!o->repeatable && a.values.count(name)) throw UsageError("--" + name + " is given twice");
        a.values.emplace(name, value);
    }
    if (!a.help && (a.operands.size() < c.min_operands || a.operands.size() > c.max_operands)) {
        std::string want = c.operands.empty() ? "no operands" : c.operands;
        throw UsageError("'saem " + c.name + "' takes " + want + ", got " + std::to_string(a.operands.size()) +
                         " (quote a query or question that has spaces)");
    }
    return a;
}

std::string help(const Command &c) {
    std::string out = "usage: saem " + c.name + (c.operands.empty() ? "" : " " + c.operands) +
                      (c.options.empty() ? "" : " [options]") + "\n\n  " + c.summary + "\n";
    if (c.options.empty()) return out;
    out += "\noptions:\n";
    size_t width = 0;
    for (const auto &o : c.options) width = std::max(width, o.name.size() + (o.value.empty() ? 0 : o.value.size() + 1));
    for (const auto &o : c.options) {
        std::string left = "--" + o.name + (o.value.empty() ? "" : " " + o.value);
        out += "  " + left + std::string(width + 4 - left.size(), ' ') + o.help + (o.repeatable ? " (repeatable)" : "") + "\n";
    }
    return out;
}

bool Args::has(const std::string &name) const {
    return values.count(name) || std::find(switches.begin(), switches.end(), name) != switches.end();
}

std::string Args::get(const std::string &name, const std::string &fallback) const {
    auto [begin, end] = values.equal_range(name);
    if (begin == end) return fallback;
    return std::prev(end)->second;
}

std::vector<std::string> Args::all(const std::string &name) const {
    std::vector<std::string> out;
    for (auto [it, end] = values.equal_range(name); it != end; ++it) out.push_back(it->second);
    return out;
}

int Args::get_int(const std::string &name, int fallback, int lo, int hi) const {
    if (!values.count(name)) return fallback;
    std::string v = get(name);
    try {
        size_t used = 0;
        long long n = std::stoll(v, &used);
        if (used == v.size() && n >= lo && n <= hi) return int(n);
    } catch (const std::exception &) {
    }
    throw UsageError("--" + name + " must be an integer from " + std::to_string(lo) + " to " + std::to_string(hi) + ", not '" + v + "'");
}

double Args::get_double(const std::string &name, double fallback, double lo, double hi) const {
    if (!values.count(name)) return fallback;
    std::string v = get(name);
    try {
        size_t used = 0;
        double d = std::stod(v, &used);
        if (used == v.size() && d >= lo && d <= hi) return d;
    } catch (const std::exception &) {
    }
    char range[64];
    std::snprintf(range, sizeof range, "%g to %g", lo, hi);
    throw UsageError("--" + name + " must be a number from " + range + ", not '" + v + "'");
}

}  // namespace saem::cli
