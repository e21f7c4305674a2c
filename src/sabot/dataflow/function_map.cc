#include "sabot/dataflow/function_map.h"

#include <utility>

#include <arrow/status.h>
#include <arrow/type.h>

#include "sabot/common/quoted_input.h"

namespace sabot {

arrow::Status ProvidedFunctions::Add(std::string name, ProvidedFunction function) {
  if (name.empty()) return arrow::Status::Invalid("a provided function needs a name");
  if (!function.call || !function.output_schema) {
    return arrow::Status::Invalid("provided function ", QuoteInput(name),
                                  " needs both call and output_schema");
  }
  std::lock_guard<std::mutex> lock(mutex_);
  functions_[std::move(name)] = std::move(function);
  return arrow::Status::OK();
}

arrow::Result<ProvidedFunction> ProvidedFunctions::Get(const std::string& name) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = functions_.find(name);
  if (it != functions_.end()) return it->second;
  std::string names;
  for (const auto& [n, f] : functions_) names += (names.empty() ? "" : ", ") + QuoteInput(n);
  return arrow::Status::KeyError("function ", QuoteInput(name), " is not provided (provided: ",
                                 names.empty() ? "none" : names, ")");
}

std::vector<std::string> ProvidedFunctions::names() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<std::string> out;
  for (const auto& [n, f] : functions_) out.push_back(n);
  return out;
}

namespace {

class FunctionMapOperator : public Operator {
 public:
  FunctionMapOperator(std::string name, ProvidedFunction function,
                      std::shared_ptr<arrow::Schema> output_schema)
      : name_(std::move(name)),
        function_(std::move(function)),
        output_schema_(std::move(output_schema)) {}

  arrow::Status Process(int32_t input, const std::shared_ptr<arrow::RecordBatch>& batch,
                        OperatorOutput* out) override {
    rows_in_ += batch->num_rows();
    auto result = function_.call(batch);
    if (!result.ok()) {
      return result.status().WithMessage("function ", QuoteInput(name_), ": ",
                                         result.status().message());
    }
    std::shared_ptr<arrow::RecordBatch> output = result.MoveValueUnsafe();
    if (output == nullptr) {
      return arrow::Status::TypeError("function ", QuoteInput(name_),
                                      " returned no batch (expected a RecordBatch of ",
                                      output_schema_->ToString(), ")");
    }
    if (!output->schema()->Equals(*output_schema_, /*check_metadata=*/false)) {
      return arrow::Status::TypeError("function ", QuoteInput(name_),
                                      " returned a batch of schema {", output->schema()->ToString(),
                                      "}; its first batch had {", output_schema_->ToString(),
                                      "} and every batch must have the same schema");
    }
    if (output->num_rows() == 0) return arrow::Status::OK();
    rows_out_ += output->num_rows();
    return out->Emit(output);
  }

  int64_t rows_in() const override { return rows_in_; }
  int64_t rows_out() const override { return rows_out_; }

 private:
  const std::string name_;
  const ProvidedFunction function_;
  const std::shared_ptr<arrow::Schema> output_schema_;
  int64_t rows_in_ = 0;
  int64_t rows_out_ = 0;
};

}  // namespace

arrow::Result<BoundOperator> BindFunctionMap(const OperatorSpec& spec,
                                             const FunctionMapParams& params,
                                             const std::shared_ptr<arrow::Schema>& input,
                                             const BindOptions& options) {
  if (options.functions == nullptr) {
    return arrow::Status::NotImplemented(
        "function ", QuoteInput(params.function),
        " is provided by the process that built the plan (a Python function of the sabot "
        "package); this process (a C++ agent, or `sabot run`) provides no functions: run the "
        "job from Python (sabot.Sabot), in distributed mode on agents started from Python "
        "(`python -m sabot agent --coordinator URI --slots N`)");
  }
  ARROW_ASSIGN_OR_RAISE(ProvidedFunction function, options.functions->Get(params.function));
  auto schema = function.output_schema(input);
  if (!schema.ok()) {
    return schema.status().WithMessage("function ", QuoteInput(params.function), ": ",
                                       schema.status().message());
  }
  if (*schema == nullptr) {
    return arrow::Status::Invalid("function ", QuoteInput(params.function),
                                  " gave no output schema");
  }
  BoundOperator bound;
  bound.output_schema = *schema;
  std::string name = params.function;
  bound.make_operator = [name, function, out = *schema](
                            const TaskContext&) -> arrow::Result<std::unique_ptr<Operator>> {
    return std::make_unique<FunctionMapOperator>(name, function, out);
  };
  return bound;
}

}  // namespace sabot
