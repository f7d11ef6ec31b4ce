// Command-line options from one table per command: what a command accepts is written once, and
// parsing, `saem help COMMAND` and `saem COMMAND --help` all read it. An option that is not in
// the command's table is an error that names it and suggests the closest one, so a misspelt flag
// can neither be ignored nor swallow the next argument.
// Threads: used by main() before anything else runs.
#pragma once

#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace saem::cli {

struct Option {
    std::string name;    // without the leading "--"
    std::string value;   // the value's placeholder ("FILE", "N"); empty: a switch that takes none
    std::string help;
    bool repeatable = false;
};

struct Command {
    std::string name;
    std::string operands;  // e.g. "DIR", "\"QUERY\""
    size_t min_operands = 0, max_operands = 0;
    std::string summary;
    std::vector<Option> options;
};

struct UsageError : std::invalid_argument {
    using std::invalid_argument::invalid_argument;
};

struct Args {
    std::vector<std::string> operands;
    std::multimap<std::string, std::string> values;  // options with a value, in order given
    std::vector<std::string> switches;
    bool help = false;  // --help or -h among the options (not after "--", not as a value)

    bool has(const std::string &name) const;  // a switch given, or an option given a value
    std::string get(const std::string &name, const std::string &fallback = "") const;  // the last value given
    std::vector<std::string> all(const std::string &name) const;
    int get_int(const std::string &name, int fallback, int lo, int hi) const;      // UsageError when out of range
    double get_double(const std::string &name, double fallback, double lo, double hi) const;
};

// Parses argv[first..] against the command's table. Throws UsageError.
Args parse(const Command &command, int argc, char **argv, int first);
// The command's usage line, summary and option table.
std::string help(const Command &command);
// Levenshtein distance, for suggestions.
size_t edit_distance(const std::string &a, const std::string &b);

}  // namespace saem::cli
