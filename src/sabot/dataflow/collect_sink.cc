#include "sabot/dataflow/collect_sink.h"

#include <string>
#include <utility>

#include <arrow/device.h>

namespace sabot {

namespace {

class CollectSink : public Operator {
 public:
  CollectSink(std::shared_ptr<CollectedOutput> collected, std::string name, int32_t subtask,
              bool copy_out)
      : collected_(std::move(collected)),
        name_(std::move(name)),
        subtask_(subtask),
        copy_out_(copy_out) {}

  arrow::Status Process(int32_t input, const std::shared_ptr<arrow::RecordBatch>& batch,
                        OperatorOutput* out) override {
    rows_ += batch->num_rows();
    // The caller owns what it collects, beyond the job: a copy in the default pool, never a
    // view of the job's shuffle memory (which the job's budget frees when it ends) — unless no
    // batch here can hold such memory (copy_out_ false): then the batch itself.
    if (!copy_out_) {
      pending_.push_back(batch);
      return arrow::Status::OK();
    }
    ARROW_ASSIGN_OR_RAISE(auto copy, batch->CopyTo(arrow::default_cpu_memory_manager()));
    pending_.push_back(std::move(copy));
    return arrow::Status::OK();
  }
  // The rows become visible when the job succeeded, as a file sink's files do.
  arrow::Status Commit() override {
    for (auto& batch : pending_) collected_->Add(name_, subtask_, std::move(batch));
    pending_.clear();
    return arrow::Status::OK();
  }
  void Abort() override { pending_.clear(); }
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
  const bool copy_out_;
  std::vector<std::shared_ptr<arrow::RecordBatch>> pending_;  // until Commit
};

}  // namespace

arrow::Result<BoundOperator> BindCollectSink(const OperatorSpec& spec,
                                             const std::shared_ptr<arrow::Schema>& input,
                                             const BindOptions& options, bool copy_out) {
  if (options.collected == nullptr) {
    return arrow::Status::Invalid(
        "collect sinks need somewhere to put their rows (BindOptions::collected is not set)");
  }
  options.collected->Declare(spec.name, input);
  BoundOperator bound;
  bound.make_operator = [collected = options.collected, name = spec.name, copy_out](
                            const TaskContext& ctx) -> arrow::Result<std::unique_ptr<Operator>> {
    return std::make_unique<CollectSink>(collected, name, ctx.subtask, copy_out);
  };
  return bound;
}

}  // namespace sabot
