#pragma once

#include <cstdint>
#include <memory>

#include <arrow/memory_pool.h>
#include <arrow/record_batch.h>
#include <arrow/result.h>
#include <arrow/type_fwd.h>

namespace sabot {

// How generated keys are spread over [0, key_cardinality).
enum class KeyDistribution {
  kUniform,  // every key equally likely
  kSkewed,   // `hot_key_fraction` of the rows carry key 0, the rest are uniform
};

// What GenerateBatch makes: a deterministic table of `key: int64` (never null), optionally
// `key_string: utf8` (the decimal text of the key, so both columns name the same key), and
// `payload_columns` int64 payload columns named p0, p1, ...
struct DataGeneratorOptions {
  int64_t batch_rows = 64 * 1024;
  int64_t key_cardinality = 1 << 20;
  KeyDistribution distribution = KeyDistribution::kUniform;
  double hot_key_fraction = 0.5;
  bool string_key = false;
  int32_t payload_columns = 3;
  uint64_t seed = 42;
};

// The schema of every batch GenerateBatch makes for `options`.
std::shared_ptr<arrow::Schema> GeneratedSchema(const DataGeneratorOptions& options);

// Batch number `batch_index` of the generated table: a pure function of (options, batch_index),
// so writers generate disjoint parts of one table without coordinating, and checks can
// regenerate any batch. Payload column j of global row r holds r * 16 + j, so each row can be
// identified after a shuffle. Invalid for nonsensical options (no rows, no keys).
arrow::Result<std::shared_ptr<arrow::RecordBatch>> GenerateBatch(
    const DataGeneratorOptions& options, int64_t batch_index,
    arrow::MemoryPool* pool = arrow::default_memory_pool());

// The key of global row `row` (the value of column `key`). Exposed for independent checks.
int64_t GeneratedKey(const DataGeneratorOptions& options, int64_t row);

}  // namespace sabot
