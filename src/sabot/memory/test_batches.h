#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <arrow/memory_pool.h>
#include <arrow/record_batch.h>
#include <arrow/result.h>

namespace sabot::testing {

// The schemas the memory tests round-trip.
enum class TestSchemaKind {
  kPrimitive,         // int64 (with nulls), double, bool
  kStrings,           // utf8 (with nulls and empty strings), large_utf8, binary
  kNestedLists,       // list<int64>, list<list<utf8>>
  kStruct,            // struct<a: int32, b: utf8, c: list<int64>>
  kDictionary,        // dictionary<int32, utf8>, whose dictionary differs from batch to batch
  kNestedDictionary,  // list<dictionary<int16, utf8>>
  kEverything,        // one column of each of the above
};
std::vector<TestSchemaKind> AllTestSchemaKinds();
std::string ToString(TestSchemaKind kind);

std::shared_ptr<arrow::Schema> TestSchema(TestSchemaKind kind);

// `rows` rows starting at global row `first_row`: every value is a pure function of the row
// number, so batches made separately and concatenated equal one batch made at once (up to
// dictionary encoding, which Densify removes).
arrow::Result<std::shared_ptr<arrow::RecordBatch>> MakeTestBatch(
    TestSchemaKind kind, int64_t first_row, int64_t rows,
    arrow::MemoryPool* pool = arrow::default_memory_pool());

// `batch` with every dictionary-encoded column (also nested) decoded to its value type, so
// batches can be compared by value whatever their dictionaries.
arrow::Result<std::shared_ptr<arrow::RecordBatch>> Densify(
    const std::shared_ptr<arrow::RecordBatch>& batch);

// The concatenation of `batches` (at least one), densified.
arrow::Result<std::shared_ptr<arrow::RecordBatch>> ConcatenateDense(
    const std::vector<std::shared_ptr<arrow::RecordBatch>>& batches);

}  // namespace sabot::testing
