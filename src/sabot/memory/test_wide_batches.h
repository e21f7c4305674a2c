#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <arrow/memory_pool.h>
#include <arrow/record_batch.h>
#include <arrow/result.h>

namespace sabot::testing {

// Schemas whose rows vary widely in width, for the tests of block cutting by actual bytes. Each
// has `id: int64` (the global row number) and one column `v` of the kind's type.
enum class WideKind {
  kString,       // utf8
  kBinary,       // binary
  kLargeString,  // large_utf8
  kLargeBinary,  // large_binary
  kList,         // list<utf8>: row r has r % 3 strings, each of the row's width / 2
  kLargeList,    // large_list<binary>: likewise
  kDictionary,   // dictionary<int32, utf8> over eight values, two of them wide
  kStruct,       // struct<s: utf8, l: list<int64>>: the string wide, the list short
};
std::vector<WideKind> AllWideKinds();
std::string ToString(WideKind kind);
std::shared_ptr<arrow::Schema> WideSchema(WideKind kind);

// Rows [first_row, first_row + rows) of a table where row r is a null when r % 17 == 3, has
// WideRowWidth(r, wide_bytes) bytes of values otherwise, and every value is a pure function of
// r (the dictionary is the same for every batch of the kind and width). Runs of 40 rows of
// `wide_bytes` every 400 rows, the other rows 0 to 6 bytes: averages say little about the rows.
arrow::Result<std::shared_ptr<arrow::RecordBatch>> MakeWideBatch(
    WideKind kind, int64_t first_row, int64_t rows, int64_t wide_bytes,
    arrow::MemoryPool* pool = arrow::default_memory_pool());
int64_t WideRowWidth(int64_t row, int64_t wide_bytes);

}  // namespace sabot::testing
