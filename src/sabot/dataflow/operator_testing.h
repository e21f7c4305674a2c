#pragma once

// Test support for operators (operator.h): outputs a test hands to an operator instance.

#include <memory>

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

}  // namespace sabot::testing
