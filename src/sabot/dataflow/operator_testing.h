#pragma once

// Test support for operators (operator.h): outputs a test hands to an operator instance.

#include <memory>
#include <vector>

#include <arrow/record_batch.h>
#include <arrow/status.h>

#include "sabot/dataflow/operator.h"

namespace sabot::testing {

// The output of an operator that must emit nothing (a sink): any batch or watermark fails the
// call that emitted it.
class NoOutput : public OperatorOutput {
 public:
  arrow::Status Emit(const std::shared_ptr<arrow::RecordBatch>&) override {
    return arrow::Status::Invalid("a sink emitted a batch");
  }
  arrow::Status EmitWatermark(WatermarkMs) override {
    return arrow::Status::Invalid("a sink emitted a watermark");
  }
};

// The output of an operator under test: keeps every batch and watermark it emits, in order.
class CollectingOutput : public OperatorOutput {
 public:
  arrow::Status Emit(const std::shared_ptr<arrow::RecordBatch>& batch) override {
    batches.push_back(batch);
    return arrow::Status::OK();
  }
  arrow::Status EmitWatermark(WatermarkMs watermark) override {
    watermarks.push_back(watermark);
    return arrow::Status::OK();
  }
  std::vector<std::shared_ptr<arrow::RecordBatch>> batches;
  std::vector<WatermarkMs> watermarks;
};

}  // namespace sabot::testing
