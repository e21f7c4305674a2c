#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <arrow/buffer.h>
#include <arrow/result.h>

namespace sabot {

// The body of a control action between a job manager and its agents (docs/shuffle-service.md):
// named fields, one "name=value" line each, names of [a-z0-9_], values without line breaks;
// binary values are base64, lists comma-separated. Readable in logs, strict when parsed.
//
// A value type; not thread-safe.
class ControlMessage {
 public:
  void Set(const std::string& name, std::string value);
  void SetInt(const std::string& name, int64_t value);
  void SetInts(const std::string& name, const std::vector<int64_t>& values);
  void SetBytes(const std::string& name, const arrow::Buffer& bytes);

  bool Has(const std::string& name) const { return fields_.count(name) > 0; }
  // KeyError naming the missing field; Invalid naming a field that does not parse.
  arrow::Result<std::string> Get(const std::string& name) const;
  arrow::Result<int64_t> GetInt(const std::string& name) const;
  arrow::Result<std::vector<int64_t>> GetInts(const std::string& name) const;
  arrow::Result<std::shared_ptr<arrow::Buffer>> GetBytes(const std::string& name) const;

  std::string Encode() const;
  // Invalid, naming the line, for anything Encode() would not write.
  static arrow::Result<ControlMessage> Decode(std::string_view text);

 private:
  std::map<std::string, std::string> fields_;
};

}  // namespace sabot
