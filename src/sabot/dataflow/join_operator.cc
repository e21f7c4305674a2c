#include "sabot/dataflow/join_operator.h"

#include <algorithm>
#include <set>
#include <string>
#include <utility>

#include <arrow/acero/exec_plan.h>
#include <arrow/acero/options.h>
#include <arrow/array/concatenate.h>
#include <arrow/compute/cast.h>
#include <arrow/compute/exec.h>
#include <arrow/record_batch.h>
#include <arrow/table.h>
#include <arrow/type.h>
#include <arrow/type_traits.h>

namespace sabot {

namespace {

namespace ac = arrow::acero;

ac::JoinType AceroJoinType(JoinType how) {
  switch (how) {
    case JoinType::kInner:
      return ac::JoinType::INNER;
    case JoinType::kLeft:
      return ac::JoinType::LEFT_OUTER;
    case JoinType::kRight:
      return ac::JoinType::RIGHT_OUTER;
    case JoinType::kFull:
      return ac::JoinType::FULL_OUTER;
    case JoinType::kSemi:
      return ac::JoinType::LEFT_SEMI;
    case JoinType::kAnti:
      return ac::JoinType::LEFT_ANTI;
    case JoinType::kRightSemi:
      return ac::JoinType::RIGHT_SEMI;
    case JoinType::kRightAnti:
      return ac::JoinType::RIGHT_ANTI;
  }
  return ac::JoinType::INNER;
}

bool OutputsLeft(JoinType how) {
  return how != JoinType::kRightSemi && how != JoinType::kRightAnti;
}
bool OutputsRight(JoinType how) {
  return how != JoinType::kSemi && how != JoinType::kAnti;
}

const std::shared_ptr<arrow::DataType>& ValueType(const std::shared_ptr<arrow::DataType>& type) {
  if (type->id() == arrow::Type::DICTIONARY) {
    return static_cast<const arrow::DictionaryType&>(*type).value_type();
  }
  return type;
}

// The type both keys of a pair are compared in: their common type where the HASH partitioner
// hashes equal values of both types alike (docs/hashing.md), so that equal keys meet in one
// task. TypeError otherwise.
arrow::Result<std::shared_ptr<arrow::DataType>> CommonKeyType(
    const arrow::Field& left, const arrow::Field& right) {
  const std::shared_ptr<arrow::DataType>& l = ValueType(left.type());
  const std::shared_ptr<arrow::DataType>& r = ValueType(right.type());
  if (l->Equals(*r)) return l;
  const arrow::Type::type a = l->id();
  const arrow::Type::type b = r->id();
  if (arrow::is_integer(a) && arrow::is_integer(b)) {
    const bool a_signed = arrow::is_signed_integer(a);
    const bool b_signed = arrow::is_signed_integer(b);
    const int width = std::max(l->byte_width(), r->byte_width());
    if (a_signed == b_signed) return width == l->byte_width() ? l : r;
    const auto& unsigned_type = a_signed ? r : l;
    if (unsigned_type->id() != arrow::Type::UINT64) return arrow::int64();
  } else if ((a == arrow::Type::FLOAT || a == arrow::Type::DOUBLE) &&
             (b == arrow::Type::FLOAT || b == arrow::Type::DOUBLE)) {
    return arrow::float64();
  } else if ((a == arrow::Type::STRING || a == arrow::Type::LARGE_STRING) &&
             (b == arrow::Type::STRING || b == arrow::Type::LARGE_STRING)) {
    return arrow::large_utf8();
  } else if ((a == arrow::Type::BINARY || a == arrow::Type::LARGE_BINARY) &&
             (b == arrow::Type::BINARY || b == arrow::Type::LARGE_BINARY)) {
    return arrow::large_binary();
  }
  return arrow::Status::TypeError(
      "join key '", left.name(), "' (", left.type()->ToString(), ") of the left input and '",
      right.name(), "' (", right.type()->ToString(),
      ") of the right input have types that cannot be joined: keys must have one type, or "
      "integer types (not uint64 with a signed type), float32/float64, string/large_string, "
      "binary/large_binary or a dictionary of one of them; convert one side first (a map with "
      "cast(...))");
}

// A key column cast to its pair's common type, added to an input for the join and dropped from
// its output.
struct HiddenKey {
  int column = 0;  // the key column in the input
  std::shared_ptr<arrow::DataType> type;
};

// One input of the join as the join reads it: the input's columns, then its hidden keys.
struct JoinSide {
  std::shared_ptr<arrow::Schema> input;
  std::shared_ptr<arrow::Schema> prepared;
  std::vector<HiddenKey> hidden;
  std::vector<arrow::FieldRef> keys;    // into `prepared`
  std::vector<arrow::FieldRef> output;  // the input's columns, when the join outputs them
};

// What every task of one bound join shares. Immutable.
struct JoinPlan {
  JoinParams params;
  JoinSide left;
  JoinSide right;
  std::shared_ptr<arrow::Schema> output;

  ac::HashJoinNodeOptions Options() const {
    return ac::HashJoinNodeOptions(AceroJoinType(params.how), left.keys, right.keys,
                                   left.output, right.output);
  }
};

// A name for a hidden key column `index` that no column of `schema` has.
std::string HiddenName(const arrow::Schema& schema, size_t index) {
  std::string name = "__sabot_join_key_" + std::to_string(index);
  while (schema.GetFieldIndex(name) >= 0) name += "_";
  return name;
}

arrow::Status FinishSide(JoinSide* side, const std::vector<std::string>& keys,
                         const std::vector<std::shared_ptr<arrow::DataType>>& cast_to,
                         bool outputs) {
  arrow::FieldVector fields = side->input->fields();
  for (size_t k = 0; k < keys.size(); ++k) {
    const int column = side->input->GetFieldIndex(keys[k]);
    if (cast_to[k] == nullptr) {
      side->keys.emplace_back(column);
      continue;
    }
    side->hidden.push_back({column, cast_to[k]});
    side->keys.emplace_back(static_cast<int>(fields.size()));
    fields.push_back(arrow::field(HiddenName(*side->input, k), cast_to[k]));
  }
  side->prepared = arrow::schema(std::move(fields));
  if (outputs) {
    for (int i = 0; i < side->input->num_fields(); ++i) side->output.emplace_back(i);
  }
  return arrow::Status::OK();
}

arrow::Status CheckKeyColumns(const std::vector<std::string>& keys, const arrow::Schema& schema,
                              const char* side) {
  for (const std::string& key : keys) {
    const int found = schema.GetFieldIndex(key);
    if (found < 0) {
      std::string columns;
      for (const auto& field : schema.fields()) {
        columns += (columns.empty() ? "" : ", ") + field->name();
      }
      if (schema.GetAllFieldIndices(key).size() > 1) {
        return arrow::Status::Invalid("join key '", key, "' names several columns of the ",
                                      side, " input");
      }
      return arrow::Status::KeyError("no column '", key, "' in the ", side,
                                     " input (columns: ", columns, ")");
    }
  }
  return arrow::Status::OK();
}

arrow::Result<std::shared_ptr<const JoinPlan>> MakeJoinPlan(
    const JoinParams& params, const std::shared_ptr<arrow::Schema>& left,
    const std::shared_ptr<arrow::Schema>& right) {
  if (params.left_keys.empty() || params.left_keys.size() != params.right_keys.size()) {
    return arrow::Status::Invalid("a join needs as many right_keys as left_keys, at least one");
  }
  ARROW_RETURN_NOT_OK(CheckKeyColumns(params.left_keys, *left, "left"));
  ARROW_RETURN_NOT_OK(CheckKeyColumns(params.right_keys, *right, "right"));
  auto plan = std::make_shared<JoinPlan>();
  plan->params = params;
  plan->left.input = left;
  plan->right.input = right;
  std::vector<std::shared_ptr<arrow::DataType>> left_cast, right_cast;
  for (size_t k = 0; k < params.left_keys.size(); ++k) {
    const auto& l = left->GetFieldByName(params.left_keys[k]);
    const auto& r = right->GetFieldByName(params.right_keys[k]);
    ARROW_ASSIGN_OR_RAISE(auto common, CommonKeyType(*l, *r));
    left_cast.push_back(l->type()->Equals(*common) ? nullptr : common);
    right_cast.push_back(r->type()->Equals(*common) ? nullptr : common);
  }
  ARROW_RETURN_NOT_OK(FinishSide(&plan->left, params.left_keys, left_cast,
                                 OutputsLeft(params.how)));
  ARROW_RETURN_NOT_OK(FinishSide(&plan->right, params.right_keys, right_cast,
                                 OutputsRight(params.how)));

  // Acero checks the join (key and column types) and gives the output types; the names are ours.
  ARROW_ASSIGN_OR_RAISE(auto empty_left, arrow::Table::MakeEmpty(plan->left.prepared));
  ARROW_ASSIGN_OR_RAISE(auto empty_right, arrow::Table::MakeEmpty(plan->right.prepared));
  ac::Declaration join{"hashjoin",
                       {ac::Declaration{"table_source", ac::TableSourceNodeOptions(empty_left)},
                        ac::Declaration{"table_source", ac::TableSourceNodeOptions(empty_right)}},
                       plan->Options()};
  auto acero_schema = ac::DeclarationToSchema(join);
  if (!acero_schema.ok()) {
    return arrow::Status::NotImplemented("Acero's hash join cannot join these inputs: ",
                                         acero_schema.status().message());
  }
  std::set<std::string> taken;
  std::vector<std::string> names;
  if (OutputsLeft(params.how)) {
    for (const auto& field : left->fields()) {
      names.push_back(field->name());
      taken.insert(field->name());
    }
  }
  if (OutputsRight(params.how)) {
    for (const auto& field : right->fields()) {
      std::string name = field->name();
      while (taken.count(name) > 0) name += "_right";
      taken.insert(name);
      names.push_back(std::move(name));
    }
  }
  const auto& types = (*acero_schema)->fields();
  if (types.size() != names.size()) {
    return arrow::Status::Invalid("Acero's hash join gives ", types.size(),
                                  " columns where ", names.size(), " were expected");
  }
  arrow::FieldVector fields;
  for (size_t i = 0; i < names.size(); ++i) {
    fields.push_back(arrow::field(names[i], types[i]->type(), types[i]->nullable()));
  }
  plan->output = arrow::schema(std::move(fields));
  return plan;
}

// One task of a join: buffers both inputs (copied into the task's pool), joins at Finish.
class HashJoinOperator : public Operator {
 public:
  HashJoinOperator(std::shared_ptr<const JoinPlan> plan, arrow::MemoryPool* pool)
      : plan_(std::move(plan)), pool_(pool) {}

  arrow::Status Process(int32_t input, const std::shared_ptr<arrow::RecordBatch>& batch,
                        OperatorOutput* out) override {
    if (input != 0 && input != 1) {
      return arrow::Status::Invalid("a join has inputs 0 (left) and 1 (right), got ", input);
    }
    rows_in_ += batch->num_rows();
    if (batch->num_rows() == 0) return arrow::Status::OK();
    const JoinSide& side = input == 0 ? plan_->left : plan_->right;
    arrow::ArrayVector columns;
    columns.reserve(side.prepared->num_fields());
    // Copied out of the shuffle's memory (the batch may pin the budget's blocks) into the
    // task's pool, the hidden keys cast on the way.
    for (const auto& column : batch->columns()) {
      ARROW_ASSIGN_OR_RAISE(auto copy, arrow::Concatenate({column}, pool_));
      columns.push_back(std::move(copy));
    }
    arrow::compute::ExecContext context(pool_);
    for (const HiddenKey& hidden : side.hidden) {
      ARROW_ASSIGN_OR_RAISE(
          auto cast, arrow::compute::Cast(*columns[hidden.column], hidden.type,
                                          arrow::compute::CastOptions::Safe(), &context));
      columns.push_back(std::move(cast));
    }
    (input == 0 ? left_ : right_)
        .push_back(arrow::RecordBatch::Make(side.prepared, batch->num_rows(), std::move(columns)));
    return arrow::Status::OK();
  }

  arrow::Status Finish(OperatorOutput* out) override {
    ARROW_ASSIGN_OR_RAISE(auto left, arrow::Table::FromRecordBatches(plan_->left.prepared,
                                                                     std::move(left_)));
    ARROW_ASSIGN_OR_RAISE(auto right, arrow::Table::FromRecordBatches(plan_->right.prepared,
                                                                      std::move(right_)));
    left_.clear();
    right_.clear();
    ac::Declaration join{"hashjoin",
                         {ac::Declaration{"table_source", ac::TableSourceNodeOptions(left)},
                          ac::Declaration{"table_source", ac::TableSourceNodeOptions(right)}},
                         plan_->Options()};
    left.reset();
    right.reset();
    ac::QueryOptions options;
    options.use_threads = false;  // on this task's thread: the pool runs the other tasks
    options.memory_pool = pool_;
    ARROW_ASSIGN_OR_RAISE(auto reader, ac::DeclarationToReader(std::move(join), options));
    while (true) {
      std::shared_ptr<arrow::RecordBatch> batch;
      ARROW_RETURN_NOT_OK(reader->ReadNext(&batch));
      if (batch == nullptr) break;
      if (batch->num_rows() == 0) continue;
      rows_out_ += batch->num_rows();
      ARROW_RETURN_NOT_OK(out->Emit(
          arrow::RecordBatch::Make(plan_->output, batch->num_rows(), batch->columns())));
    }
    return reader->Close();
  }

  void Abort() override {
    left_.clear();
    right_.clear();
  }

  int64_t rows_in() const override { return rows_in_; }
  int64_t rows_out() const override { return rows_out_; }

 private:
  const std::shared_ptr<const JoinPlan> plan_;
  arrow::MemoryPool* const pool_;
  std::vector<std::shared_ptr<arrow::RecordBatch>> left_;
  std::vector<std::shared_ptr<arrow::RecordBatch>> right_;
  int64_t rows_in_ = 0;
  int64_t rows_out_ = 0;
};

}  // namespace

arrow::Result<std::shared_ptr<arrow::Schema>> JoinOutputSchema(
    const JoinParams& params, const std::shared_ptr<arrow::Schema>& left,
    const std::shared_ptr<arrow::Schema>& right) {
  ARROW_ASSIGN_OR_RAISE(auto plan, MakeJoinPlan(params, left, right));
  return plan->output;
}

arrow::Result<BoundOperator> BindJoin(const OperatorSpec& spec, const JoinParams& params,
                                      const std::vector<std::shared_ptr<arrow::Schema>>& inputs,
                                      const OperatorPlanContext& context) {
  if (inputs.size() != 2 || inputs[0] == nullptr || inputs[1] == nullptr) {
    return arrow::Status::Invalid("a join needs two input schemas (left, right), got ",
                                  inputs.size());
  }
  if (!context.bounded_input) {
    return arrow::Status::NotImplemented(
        "a hash join needs bounded inputs (it joins at the end of both); an input of this "
        "join reads an unbounded source");
  }
  ARROW_ASSIGN_OR_RAISE(auto plan, MakeJoinPlan(params, inputs[0], inputs[1]));
  BoundOperator bound;
  bound.output_schema = plan->output;
  bound.make_operator =
      [plan](const TaskContext& task) -> arrow::Result<std::unique_ptr<Operator>> {
    return std::make_unique<HashJoinOperator>(plan, task.pool);
  };
  return bound;
}

}  // namespace sabot
