// Reading typed fields of a JSON request body, shared by the routes and search_request_from_json:
// each absent or null field is the fallback; a field of the wrong type or out of range is a
// RequestError (missing_field, invalid_field) naming it. Pure functions: any thread.
#pragma once

#include "retrieval/pipeline.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>

namespace saem::fields {

// The field, or null when it is absent or JSON null.
const nlohmann::json *find(const nlohmann::json &body, const char *field);
std::string required_string(const nlohmann::json &body, const char *field);
// required_string of at most max_bytes ("'query' is N bytes; the limit is M").
std::string bounded_string(const nlohmann::json &body, const char *field, size_t max_bytes);
int bounded_int(const nlohmann::json &body, const char *field, int fallback, int lo, int hi);
double bounded_number(const nlohmann::json &body, const char *field, double fallback, double lo, double hi);
bool optional_bool(const nlohmann::json &body, const char *field, bool fallback);

}  // namespace saem::fields
