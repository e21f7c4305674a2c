#pragma once

// Test support for checkpoints (checkpoint.h): an in-memory StateWriter / StateReader, so a test
// can Snapshot an operator or source, make a NEW instance and Restore it from exactly what was
// put, without checkpoint storage.
//
//   sabot::testing::MemoryState state;
//   ASSERT_OK(old_instance->Snapshot(1, state.writer()));
//   ASSERT_OK(new_instance->Restore(1, state.reader()));
//
// Not thread safe: one test thread uses it.

#include <map>
#include <memory>
#include <string>
#include <utility>

#include <arrow/result.h>
#include <arrow/status.h>
#include <arrow/table.h>

#include "sabot/dataflow/checkpoint.h"

namespace sabot::testing {

// One snapshot's parts by name. Put checks what storage would check (a valid, unique name; a
// non-null table that validates) so a test catches a snapshot the real storage would refuse.
class MemoryState : public StateWriter, public StateReader {
 public:
  arrow::Status Put(const std::string& name, std::shared_ptr<arrow::Table> table) override {
    if (name.empty()) return arrow::Status::Invalid("state part with an empty name");
    for (char c : name) {
      const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                      (c >= '0' && c <= '9') || c == '_';
      if (!ok) return arrow::Status::Invalid("state part name '", name, "' has '", c, "'");
    }
    if (table == nullptr) return arrow::Status::Invalid("state part '", name, "' is null");
    ARROW_RETURN_NOT_OK(table->ValidateFull());
    if (!parts_.emplace(name, std::move(table)).second) {
      return arrow::Status::Invalid("state part '", name, "' put twice in one snapshot");
    }
    return arrow::Status::OK();
  }
  arrow::Result<std::shared_ptr<arrow::Table>> Get(const std::string& name) override {
    auto it = parts_.find(name);
    return it == parts_.end() ? nullptr : it->second;
  }

  StateWriter* writer() { return this; }
  StateReader* reader() { return this; }
  const std::map<std::string, std::shared_ptr<arrow::Table>>& parts() const { return parts_; }
  void Clear() { parts_.clear(); }

 private:
  std::map<std::string, std::shared_ptr<arrow::Table>> parts_;
};

}  // namespace sabot::testing
