#pragma once

// The function_map operator (FunctionMapParams): a map whose function is not in the plan but is
// provided, by name, by the process that binds the job. The Python package provides its Python
// functions this way (pyarrow.RecordBatch -> pyarrow.RecordBatch, called with the GIL held only
// inside the function); any C++ caller may provide a std::function. A process that provides no
// function of that name — a C++ agent, `sabot run` — refuses the plan when binding it, naming
// the function: the plan carries only the name, never code.

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <arrow/record_batch.h>
#include <arrow/result.h>
#include <arrow/type_fwd.h>

#include "sabot/common/thread_annotations.h"
#include "sabot/dataflow/logical_plan.h"
#include "sabot/dataflow/operator_binding.h"

namespace sabot {

// One provided function.
//
// Thread safety: `call` is called from the job's task threads, concurrently when the operator
// has several tasks (each call with its own batch); `output_schema` once per binding, from the
// binding thread. Both must stay callable while a job bound with them runs.
struct ProvidedFunction {
  // The schema of the batches the function returns for input batches of `input` (the Python
  // package calls the function once on an empty batch of that schema to learn it, unless the
  // caller declared it). Errors fail the binding, naming the operator.
  std::function<arrow::Result<std::shared_ptr<arrow::Schema>>(
      const std::shared_ptr<arrow::Schema>& input)>
      output_schema;
  // The function itself: one output batch per input batch, of the schema `output_schema` gave
  // (checked for every batch). An error fails the job, naming the operator and task.
  std::function<arrow::Result<std::shared_ptr<arrow::RecordBatch>>(
      const std::shared_ptr<arrow::RecordBatch>& batch)>
      call;
};

// The functions function_map operators call, by name: the mirror of ProvidedTables, filled by
// the caller before the job is bound. Safe for concurrent use.
class ProvidedFunctions {
 public:
  // Provides `function` under `name`, replacing an earlier one of that name. Invalid for an
  // empty name or a function without `call` or `output_schema`.
  arrow::Status Add(std::string name, ProvidedFunction function);
  // The function provided under `name`; KeyError naming it and the names provided otherwise.
  arrow::Result<ProvidedFunction> Get(const std::string& name) const;
  std::vector<std::string> names() const;

 private:
  mutable std::mutex mutex_;
  std::map<std::string, ProvidedFunction> functions_ SABOT_GUARDED_BY(mutex_);
};

// Binds a function_map: looks the function up in options.functions (KeyError when it is not
// provided, or NotImplemented when the process provides no functions at all, as a C++ agent),
// asks it for its output schema given `input`. Each task's instance calls the function once per
// input batch, checks the result's schema against that output schema (TypeError naming the
// function otherwise) and emits it; empty results are dropped.
arrow::Result<BoundOperator> BindFunctionMap(const OperatorSpec& spec,
                                             const FunctionMapParams& params,
                                             const std::shared_ptr<arrow::Schema>& input,
                                             const BindOptions& options);

}  // namespace sabot
