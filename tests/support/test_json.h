// test_json: the --json output of the commands, parsed (nlohmann-json) rather than searched.
#pragma once

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <string>

namespace pgxform_test {

// Ordered: two objects are equal only with their keys in the same order, as the docs list them.
using Json = nlohmann::ordered_json;

// Throws (and so fails the test) unless `text` is one valid JSON value.
inline Json parse_json(const std::string& text) {
  INFO(text);
  return Json::parse(text);
}

// The object of job `job` in {"jobs": [...]}; a test failure when there is none.
inline Json job_in(const Json& doc, const std::string& job) {
  for (const auto& j : doc.at("jobs"))
    if (j.at("job") == job) return j;
  FAIL("no job " << job << " in " << doc.dump());
  return {};
}

}  // namespace pgxform_test
