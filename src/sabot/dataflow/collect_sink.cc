#include "sabot/dataflow/collect_sink.h"

#include <string>
#include <utility>

namespace sabot {

namespace {

class CollectSink : public Operator {
 public:
  CollectSink(std::shared_ptr<CollectedOutput> collected, std::string name, int32_t subtask)
      : collected_(std::move(collected)), name_(std::move(name)), subtask_(subtask) {}

  arrow::Status Process(int32_t input, const std::shared_ptr<arrow::RecordBatch>& batch,
                        OperatorOutput* out) override {
    rows_ += batch->num_rows();
    collected_->Add(name_, subtask_, batch);
    return arrow::Status::OK();
  }
  arrow::Status OnWatermark(WatermarkMs watermark, OperatorOutput* out) override {
    return arrow::Status::OK();
  }
  int64_t rows_in() const override { return rows_; }
  int64_t rows_out() const override { return rows_; }

 private:
  std::shared_ptr<CollectedOutput> collected_;
  std::string name_;
  int32_t subtask_;
  int64_t rows_ = 0;
};

}  // namespace

arrow::Result<BoundOperator> BindCollectSink(const OperatorSpec& spec,
                                             const std::shared_ptr<arrow::Schema>& input,
                                             const BindOptions& options) {
  if (options.collected == nullptr) {
    return arrow::Status::Invalid(
        "collect sinks need somewhere to put their rows (BindOptions::collected is not set)");
  }
  options.collected->Declare(spec.name, input);
  BoundOperator bound;
  bound.make_operator = [collected = options.collected, name = spec.name](
                            const TaskContext& ctx) -> arrow::Result<std::unique_ptr<Operator>> {
    return std::make_unique<CollectSink>(collected, name, ctx.subtask);
  };
  return bound;
}

}  // namespace sabot
