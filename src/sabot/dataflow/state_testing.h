#pragma once

// Test support for checkpoints (checkpoint.h): an in-memory StateWriter / StateReader, so a test
// can Snapshot an operator or source, make a NEW instance and Restore it from exactly what was
// put, without checkpoint storage.
//
//   sabot::testing::MemoryState state;
//   ASSERT_OK(old_instance->Snapshot(1, state.writer()));
//   ASSERT_OK(new_instance->Restore(1, state.reader()));
//
// Also: reading a source's steps, and the rewind check every source passes
// (CheckSourceRewinds). Not thread safe: one test thread uses it.

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <arrow/result.h>
#include <arrow/status.h>
#include <arrow/record_batch.h>
#include <arrow/io/memory.h>
#include <arrow/ipc/reader.h>
#include <arrow/ipc/writer.h>
#include <arrow/table.h>

#include "sabot/dataflow/checkpoint.h"
#include "sabot/dataflow/operator.h"

namespace sabot::testing {

// One snapshot's parts by name. Put checks what storage would check (a valid, unique name; a
// non-null table that validates) so a test catches a snapshot the real storage would refuse, and
// keeps the table it is given with an Arrow IPC copy of it; Get hands out the copy (what a
// restarted task reads from disk), and Unchanged() tells whether every table put still equals
// its copy — the contract that an operator never mutates what it put. Not thread safe.
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
    if (parts_.count(name) != 0) {
      return arrow::Status::Invalid("state part '", name, "' put twice in one snapshot");
    }
    // The copy a checkpoint file would hold.
    ARROW_ASSIGN_OR_RAISE(auto sink, arrow::io::BufferOutputStream::Create());
    ARROW_ASSIGN_OR_RAISE(auto writer, arrow::ipc::MakeFileWriter(sink, table->schema()));
    ARROW_RETURN_NOT_OK(writer->WriteTable(*table));
    ARROW_RETURN_NOT_OK(writer->Close());
    ARROW_ASSIGN_OR_RAISE(auto buffer, sink->Finish());
    auto source = std::make_shared<arrow::io::BufferReader>(buffer);
    ARROW_ASSIGN_OR_RAISE(auto reader, arrow::ipc::RecordBatchFileReader::Open(source));
    ARROW_ASSIGN_OR_RAISE(auto copy, reader->ToTable());
    put_.emplace(name, std::move(table));
    parts_.emplace(name, std::move(copy));
    return arrow::Status::OK();
  }
  arrow::Result<std::shared_ptr<arrow::Table>> Get(const std::string& name) override {
    auto it = parts_.find(name);
    return it == parts_.end() ? nullptr : it->second;
  }

  StateWriter* writer() { return this; }
  StateReader* reader() { return this; }
  // The parts as a restarted task reads them (the copies).
  const std::map<std::string, std::shared_ptr<arrow::Table>>& parts() const { return parts_; }
  size_t size() const { return parts_.size(); }
  void Clear() {
    parts_.clear();
    put_.clear();
  }
  // Whether every table put still equals the copy taken when it was put.
  bool Unchanged() const {
    for (const auto& [name, table] : put_) {
      if (!table->Equals(*parts_.at(name))) return false;
    }
    return true;
  }

 private:
  std::map<std::string, std::shared_ptr<arrow::Table>> parts_;  // the copies
  std::map<std::string, std::shared_ptr<arrow::Table>> put_;    // the tables as put
};

// What a source task yielded: its batches and watermarks in order, and whether it ended.
struct SourceSteps {
  std::vector<SourceReader::Step> steps;  // kBatch and kWatermark only
  bool ended = false;
  int64_t batches() const {
    int64_t n = 0;
    for (const auto& step : steps) n += step.kind == SourceReader::Step::Kind::kBatch ? 1 : 0;
    return n;
  }
};

// Steps of `reader` until `max_batches` batches were yielded or it ended (a kWait step is
// waited out: a rate-limited source is read at its pace).
inline arrow::Result<SourceSteps> ReadSourceSteps(SourceReader* reader, int64_t max_batches) {
  SourceSteps out;
  while (out.batches() < max_batches) {
    ARROW_ASSIGN_OR_RAISE(SourceReader::Step step, reader->Next());
    switch (step.kind) {
      case SourceReader::Step::Kind::kEnd:
        out.ended = true;
        return out;
      case SourceReader::Step::Kind::kWait:
        std::this_thread::sleep_until(step.ready_at);
        break;
      default:
        out.steps.push_back(std::move(step));
    }
  }
  return out;
}

// OK when `actual` has exactly the steps of `expected`: the same kinds in the same order, equal
// batches (schema and values) and equal watermarks; else Invalid naming the first difference.
inline arrow::Status CheckSameSteps(const SourceSteps& expected, const SourceSteps& actual) {
  for (size_t i = 0; i < std::max(expected.steps.size(), actual.steps.size()); ++i) {
    if (i >= expected.steps.size() || i >= actual.steps.size()) {
      return arrow::Status::Invalid("step ", i, ": one reader has ", expected.steps.size(),
                                    " steps, the other ", actual.steps.size());
    }
    const SourceReader::Step& a = expected.steps[i];
    const SourceReader::Step& b = actual.steps[i];
    if (a.kind != b.kind) return arrow::Status::Invalid("step ", i, ": kinds differ");
    if (a.kind == SourceReader::Step::Kind::kWatermark && a.watermark != b.watermark) {
      return arrow::Status::Invalid("step ", i, ": watermark ", a.watermark, " vs ", b.watermark);
    }
    if (a.kind == SourceReader::Step::Kind::kBatch && !a.batch->Equals(*b.batch)) {
      return arrow::Status::Invalid("step ", i, ": batches differ:\n", a.batch->ToString(),
                                    "\nvs\n", b.batch->ToString());
    }
  }
  if (expected.ended != actual.ended) return arrow::Status::Invalid("one reader ended");
  return arrow::Status::OK();
}

// The rewind check of a source: an instance (`make`) reads `before` batches, snapshots, then
// reads up to `after` more batches (the rest); a NEW instance restored from the snapshot must
// yield exactly those steps, and both must report the same rows_out. Returns the steps read
// after the snapshot (for further checks).
inline arrow::Result<SourceSteps> CheckSourceRewinds(
    const std::function<arrow::Result<std::unique_ptr<SourceReader>>()>& make, int64_t before,
    int64_t after, CheckpointId id = 1) {
  ARROW_ASSIGN_OR_RAISE(auto first, make());
  ARROW_ASSIGN_OR_RAISE(SourceSteps head, ReadSourceSteps(first.get(), before));
  if (head.batches() != before) {
    return arrow::Status::Invalid("the source ended after ", head.batches(), " of ", before,
                                  " batches before the snapshot");
  }
  MemoryState state;
  ARROW_RETURN_NOT_OK(first->Snapshot(id, state.writer()));
  ARROW_ASSIGN_OR_RAISE(SourceSteps rest, ReadSourceSteps(first.get(), after));
  ARROW_ASSIGN_OR_RAISE(auto second, make());
  ARROW_RETURN_NOT_OK(second->Restore(id, state.reader()));
  ARROW_ASSIGN_OR_RAISE(SourceSteps replay, ReadSourceSteps(second.get(), after));
  ARROW_RETURN_NOT_OK(CheckSameSteps(rest, replay));
  if (first->rows_out() != second->rows_out()) {
    return arrow::Status::Invalid("rows_out ", first->rows_out(), " vs restored ",
                                  second->rows_out());
  }
  return rest;
}

}  // namespace sabot::testing
