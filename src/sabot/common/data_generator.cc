#include "sabot/common/data_generator.h"

#include <string>
#include <vector>

#include <arrow/array.h>
#include <arrow/builder.h>
#include <arrow/type.h>

namespace sabot {

namespace {

// splitmix64: a small, well-mixed, platform-independent generator of one 64-bit value per input.
uint64_t SplitMix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

}  // namespace

int64_t GeneratedKey(const DataGeneratorOptions& options, int64_t row) {
  uint64_t bits = SplitMix64(options.seed ^ (static_cast<uint64_t>(row) * 0xD6E8FEB86659FD93ULL));
  if (options.distribution == KeyDistribution::kSkewed) {
    // The top 53 bits give a uniform double in [0, 1).
    double u = static_cast<double>(bits >> 11) * 0x1.0p-53;
    if (u < options.hot_key_fraction) return 0;
    bits = SplitMix64(bits);
  }
  return static_cast<int64_t>(bits % static_cast<uint64_t>(options.key_cardinality));
}

std::shared_ptr<arrow::Schema> GeneratedSchema(const DataGeneratorOptions& options) {
  arrow::FieldVector fields = {arrow::field("key", arrow::int64(), /*nullable=*/false)};
  if (options.string_key) fields.push_back(arrow::field("key_string", arrow::utf8(), false));
  for (int32_t j = 0; j < options.payload_columns; ++j) {
    fields.push_back(arrow::field("p" + std::to_string(j), arrow::int64(), false));
  }
  return arrow::schema(std::move(fields));
}

arrow::Result<std::shared_ptr<arrow::RecordBatch>> GenerateBatch(
    const DataGeneratorOptions& options, int64_t batch_index, arrow::MemoryPool* pool) {
  if (options.batch_rows < 0) {
    return arrow::Status::Invalid("generator batch_rows must be >= 0, got ", options.batch_rows);
  }
  if (options.key_cardinality < 1) {
    return arrow::Status::Invalid("generator key_cardinality must be >= 1, got ",
                                  options.key_cardinality);
  }
  if (options.payload_columns < 0 || options.payload_columns > 1000) {
    return arrow::Status::Invalid("generator payload_columns must be in [0, 1000], got ",
                                  options.payload_columns);
  }
  const int64_t n = options.batch_rows;
  const int64_t first_row = batch_index * n;
  arrow::ArrayVector columns;

  ARROW_ASSIGN_OR_RAISE(auto keys, arrow::AllocateBuffer(n * sizeof(int64_t), pool));
  auto* key_data = reinterpret_cast<int64_t*>(keys->mutable_data());
  for (int64_t i = 0; i < n; ++i) key_data[i] = GeneratedKey(options, first_row + i);
  columns.push_back(std::make_shared<arrow::Int64Array>(n, std::move(keys)));

  if (options.string_key) {
    arrow::StringBuilder builder(pool);
    ARROW_RETURN_NOT_OK(builder.Reserve(n));
    ARROW_RETURN_NOT_OK(builder.ReserveData(n * 8));
    for (int64_t i = 0; i < n; ++i) {
      ARROW_RETURN_NOT_OK(builder.Append(std::to_string(key_data[i])));
    }
    ARROW_ASSIGN_OR_RAISE(auto strings, builder.Finish());
    columns.push_back(std::move(strings));
  }
  for (int32_t j = 0; j < options.payload_columns; ++j) {
    ARROW_ASSIGN_OR_RAISE(auto values, arrow::AllocateBuffer(n * sizeof(int64_t), pool));
    auto* data = reinterpret_cast<int64_t*>(values->mutable_data());
    for (int64_t i = 0; i < n; ++i) data[i] = (first_row + i) * 16 + j;
    columns.push_back(std::make_shared<arrow::Int64Array>(n, std::move(values)));
  }
  return arrow::RecordBatch::Make(GeneratedSchema(options), n, std::move(columns));
}

}  // namespace sabot
