#pragma once

// Test support for operator snapshots (checkpoint.h) in the stateful operators' tests: an
// in-memory StateWriter / StateReader. Put keeps the table it is given and an Arrow IPC copy of
// it; Get hands out the copy (what a restarted task reads from disk), and Unchanged() tells
// whether every table put still equals its copy — the contract that an operator never mutates
// what it put. Not thread safe: one test thread uses it.

#include <map>
#include <memory>
#include <string>
#include <utility>

#include <arrow/io/memory.h>
#include <arrow/ipc/reader.h>
#include <arrow/ipc/writer.h>
#include <arrow/result.h>
#include <arrow/status.h>
#include <arrow/table.h>

#include "sabot/dataflow/checkpoint.h"

namespace sabot::testing {

class SnapshotParts : public StateWriter, public StateReader {
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
    // The copy a checkpoint file would hold.
    ARROW_ASSIGN_OR_RAISE(auto sink, arrow::io::BufferOutputStream::Create());
    ARROW_ASSIGN_OR_RAISE(auto writer, arrow::ipc::MakeFileWriter(sink, table->schema()));
    ARROW_RETURN_NOT_OK(writer->WriteTable(*table));
    ARROW_RETURN_NOT_OK(writer->Close());
    ARROW_ASSIGN_OR_RAISE(auto buffer, sink->Finish());
    auto source = std::make_shared<arrow::io::BufferReader>(buffer);
    ARROW_ASSIGN_OR_RAISE(auto reader, arrow::ipc::RecordBatchFileReader::Open(source));
    ARROW_ASSIGN_OR_RAISE(auto copy, reader->ToTable());
    if (!parts_.emplace(name, Part{table, copy}).second) {
      return arrow::Status::Invalid("state part '", name, "' put twice in one snapshot");
    }
    return arrow::Status::OK();
  }

  arrow::Result<std::shared_ptr<arrow::Table>> Get(const std::string& name) override {
    auto it = parts_.find(name);
    if (it == parts_.end()) return nullptr;
    return it->second.copy;
  }

  // Whether every table put still equals the copy taken when it was put.
  bool Unchanged() const {
    for (const auto& [name, part] : parts_) {
      if (!part.put->Equals(*part.copy)) return false;
    }
    return true;
  }
  size_t size() const { return parts_.size(); }

 private:
  struct Part {
    std::shared_ptr<arrow::Table> put;
    std::shared_ptr<arrow::Table> copy;
  };
  std::map<std::string, Part> parts_;
};

}  // namespace sabot::testing
