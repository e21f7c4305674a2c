#pragma once

// Test support shared by the partition layer's tests (not part of the library).

#include <memory>
#include <string>
#include <vector>

#include <arrow/api.h>
#include <arrow/compute/api_vector.h>
#include <arrow/json/from_string.h>

#include "sabot/common/ids.h"
#include "sabot/testing/assertions.h"

namespace sabot::testing {

inline std::shared_ptr<arrow::Array> Json(const std::shared_ptr<arrow::DataType>& type,
                                          const std::string& json) {
  return arrow::json::ArrayFromJSONString(type, json).ValueOrDie();
}

// The expected split of `batch` by `ids`, computed independently of RowScatter: a scalar loop
// collects each partition's row numbers, then arrow::compute::Take gathers them.
inline std::vector<std::shared_ptr<arrow::RecordBatch>> ReferenceSplit(
    const std::shared_ptr<arrow::RecordBatch>& batch, const std::vector<PartitionId>& ids,
    int32_t num_partitions) {
  std::vector<std::vector<int64_t>> rows(static_cast<size_t>(num_partitions));
  for (size_t i = 0; i < ids.size(); ++i) rows[ids[i]].push_back(static_cast<int64_t>(i));
  std::vector<std::shared_ptr<arrow::RecordBatch>> out(static_cast<size_t>(num_partitions));
  for (int32_t p = 0; p < num_partitions; ++p) {
    if (rows[p].empty()) continue;
    arrow::Int64Builder builder;
    EXPECT_TRUE(builder.AppendValues(rows[p]).ok());
    auto indices = builder.Finish().ValueOrDie();
    auto taken = arrow::compute::Take(batch, indices).ValueOrDie();
    out[p] = taken.record_batch();
  }
  return out;
}

}  // namespace sabot::testing
