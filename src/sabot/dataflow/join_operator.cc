#include "sabot/dataflow/join_operator.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <limits>
#include <set>
#include <string>
#include <utility>

#include <arrow/acero/exec_plan.h>
#include <arrow/acero/options.h>
#include <arrow/array.h>
#include <arrow/builder.h>
#include <arrow/array/concatenate.h>
#include <arrow/compute/api_aggregate.h>
#include <arrow/compute/api_scalar.h>
#include <arrow/compute/api_vector.h>
#include <arrow/compute/cast.h>
#include <arrow/compute/expression.h>
#include <arrow/compute/exec.h>
#include <arrow/record_batch.h>
#include <arrow/table.h>
#include <arrow/type.h>
#include <arrow/type_traits.h>
#include <arrow/util/bit_util.h>
#include <arrow/util/byte_size.h>

#include "sabot/dataflow/grouped_aggregation.h"
#include "sabot/dataflow/state_spill.h"
#include "sabot/partition/key_hash.h"

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
// its output. Float keys are always added so (normalized, NormalizeFloatKey): Acero compares keys
// bit by bit, but -0.0 and 0.0 are one key and all NaNs are one key (docs/hashing.md); the
// output keeps the input's own values.
struct HiddenKey {
  int column = 0;  // the key column in the input
  std::shared_ptr<arrow::DataType> type;
};

// One input of the join as the join reads it: the input's columns, then its hidden keys, then
// (event-time joins) its event time as int64 in the join's time unit (JoinPlan::per_ms) and
// (window joins) its window's start in that unit.
struct JoinSide {
  std::shared_ptr<arrow::Schema> input;
  std::shared_ptr<arrow::Schema> prepared;
  std::vector<HiddenKey> hidden;
  std::vector<arrow::FieldRef> keys;    // into `prepared`
  std::vector<std::string> key_names;   // the names of `keys` in `prepared`
  std::vector<arrow::FieldRef> output;  // the input's columns, when the join outputs them
  int time_column = -1;                 // the event-time column in `input`
  int time_index = -1;                  // its time (int64, JoinPlan::per_ms) in `prepared`
  int window_index = -1;                // the window start (same unit) in `prepared`
  std::string time_name;                // the name of prepared[time_index]
};

// What every task of one bound join shares. Immutable.
struct JoinPlan {
  JoinParams params;
  JoinSide left;
  JoinSide right;
  std::shared_ptr<arrow::Schema> output;
  // Event-time joins compare times in the finer unit of the two time columns, at least
  // milliseconds (an int64 column counts as milliseconds), so that nothing is truncated:
  // `time_unit` is it and `per_ms` its ticks per millisecond; `before`, `after` and `window` in
  // it are these.
  arrow::TimeUnit::type time_unit = arrow::TimeUnit::MILLI;
  int64_t per_ms = 1;
  int64_t before = 0;
  int64_t after = 0;
  int64_t window = 0;

  ac::HashJoinNodeOptions Options() const {
    arrow::compute::Expression filter = arrow::compute::literal(true);
    if (params.time == JoinTime::kInterval) {
      namespace cp = arrow::compute;
      const cp::Expression l = cp::field_ref(left.time_name);
      const cp::Expression r = cp::field_ref(right.time_name);
      filter = cp::and_(
          cp::greater_equal(r, cp::call("subtract", {l, cp::literal(before)})),
          cp::less_equal(r, cp::call("add", {l, cp::literal(after)})));
    }
    return ac::HashJoinNodeOptions(AceroJoinType(params.how), left.keys, right.keys,
                                   left.output, right.output, std::move(filter));
  }
};

// `base`, with '_' appended until no column of `a` or `b` has the name.
std::string HiddenName(std::string base, const arrow::Schema& a, const arrow::Schema& b) {
  while (a.GetFieldIndex(base) >= 0 || b.GetFieldIndex(base) >= 0) base += "_";
  return base;
}

arrow::Status FinishSide(JoinSide* side, const arrow::Schema& other,
                         const std::vector<std::string>& keys,
                         const std::vector<std::shared_ptr<arrow::DataType>>& cast_to,
                         bool outputs, const JoinParams& params, const char* which) {
  arrow::FieldVector fields = side->input->fields();
  for (size_t k = 0; k < keys.size(); ++k) {
    const int column = side->input->GetFieldIndex(keys[k]);
    if (cast_to[k] == nullptr) {
      side->keys.emplace_back(column);
      side->key_names.push_back(keys[k]);
      continue;
    }
    side->hidden.push_back({column, cast_to[k]});
    side->keys.emplace_back(static_cast<int>(fields.size()));
    side->key_names.push_back(
        HiddenName("__sabot_join_key_" + std::to_string(k), *side->input, other));
    fields.push_back(arrow::field(side->key_names.back(), cast_to[k]));
  }
  if (params.time != JoinTime::kNone) {
    side->time_index = static_cast<int>(fields.size());
    side->time_name = HiddenName(std::string("__sabot_join_time_") + which, *side->input, other);
    fields.push_back(arrow::field(side->time_name, arrow::int64()));
    if (params.time == JoinTime::kWindow) {
      side->window_index = static_cast<int>(fields.size());
      side->keys.emplace_back(side->window_index);
      fields.push_back(arrow::field(HiddenName("__sabot_join_window", *side->input, other),
                                    arrow::int64()));
    }
  }
  side->prepared = arrow::schema(std::move(fields));
  if (outputs) {
    for (int i = 0; i < side->input->num_fields(); ++i) side->output.emplace_back(i);
  }
  return arrow::Status::OK();
}

// The event-time column `name` of one input: a timestamp of any unit or int64 milliseconds.
arrow::Result<int> TimeColumn(const arrow::Schema& schema, const std::string& name,
                              const char* side) {
  const int index = schema.GetFieldIndex(name);
  if (index < 0) {
    return arrow::Status::KeyError("no event-time column '", name, "' in the ", side, " input");
  }
  const auto& type = schema.field(index)->type();
  if (type->id() != arrow::Type::TIMESTAMP && type->id() != arrow::Type::INT64) {
    return arrow::Status::TypeError("event-time column '", name, "' of the ", side,
                                    " input is ", type->ToString(),
                                    "; expected a timestamp or int64 milliseconds");
  }
  return index;
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
    const bool is_float =
        common->id() == arrow::Type::FLOAT || common->id() == arrow::Type::DOUBLE;
    left_cast.push_back(l->type()->Equals(*common) && !is_float ? nullptr : common);
    right_cast.push_back(r->type()->Equals(*common) && !is_float ? nullptr : common);
  }
  if (params.time != JoinTime::kNone) {
    ARROW_ASSIGN_OR_RAISE(plan->left.time_column, TimeColumn(*left, params.left_time, "left"));
    ARROW_ASSIGN_OR_RAISE(plan->right.time_column,
                          TimeColumn(*right, params.right_time, "right"));
    for (const auto& field : {left->field(plan->left.time_column),
                              right->field(plan->right.time_column)}) {
      if (field->type()->id() != arrow::Type::TIMESTAMP) continue;
      plan->time_unit = std::max(plan->time_unit,
                                 static_cast<const arrow::TimestampType&>(*field->type()).unit());
    }
    plan->per_ms = plan->time_unit == arrow::TimeUnit::NANO    ? 1000000
                   : plan->time_unit == arrow::TimeUnit::MICRO ? 1000
                                                               : 1;
    const std::pair<int64_t*, std::chrono::milliseconds> spans[] = {
        {&plan->before, params.before}, {&plan->after, params.after},
        {&plan->window, params.window}};
    for (const auto& [to, span] : spans) {
      if (__builtin_mul_overflow(span.count(), plan->per_ms, to)) {
        return arrow::Status::Invalid("join time span of ", span.count(),
                                      " ms does not fit in int64 at the time columns' unit (",
                                      plan->per_ms, " per ms)");
      }
    }
  }
  ARROW_RETURN_NOT_OK(FinishSide(&plan->left, *right, params.left_keys, left_cast,
                                 OutputsLeft(params.how), params, "left"));
  ARROW_RETURN_NOT_OK(FinishSide(&plan->right, *left, params.right_keys, right_cast,
                                 OutputsRight(params.how), params, "right"));

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

// `batch` of input `side` as the join reads it (JoinSide::prepared), every buffer copied into
// `pool`: a batch from a shuffle may pin the budget's blocks, and the join keeps its rows.
arrow::Result<std::shared_ptr<arrow::RecordBatch>> Prepare(
    const JoinPlan& plan, const JoinSide& side, const arrow::RecordBatch& batch,
    arrow::MemoryPool* pool) {
  arrow::ArrayVector columns;
  columns.reserve(side.prepared->num_fields());
  for (const auto& column : batch.columns()) {
    ARROW_ASSIGN_OR_RAISE(auto copy, arrow::Concatenate({column}, pool));
    columns.push_back(std::move(copy));
  }
  arrow::compute::ExecContext context(pool);
  for (const HiddenKey& hidden : side.hidden) {
    ARROW_ASSIGN_OR_RAISE(
        auto cast, arrow::compute::Cast(*columns[hidden.column], hidden.type,
                                        arrow::compute::CastOptions::Safe(), &context));
    ARROW_ASSIGN_OR_RAISE(auto normal, NormalizeFloatKey(cast, pool));
    columns.push_back(std::move(normal));
  }
  if (side.time_index >= 0) {
    // In the plan's unit, which is as fine as the column's or finer: an exact conversion (an
    // overflow is an error).
    std::shared_ptr<arrow::Array> time = columns[side.time_column];
    if (time->type_id() == arrow::Type::TIMESTAMP) {
      const auto& unit = static_cast<const arrow::TimestampType&>(*time->type()).unit();
      if (unit != plan.time_unit) {
        ARROW_ASSIGN_OR_RAISE(time, arrow::compute::Cast(*time, arrow::timestamp(plan.time_unit),
                                                         arrow::compute::CastOptions::Safe(),
                                                         &context));
      }
      ARROW_ASSIGN_OR_RAISE(time, time->View(arrow::int64()));
    } else if (plan.per_ms != 1) {
      ARROW_ASSIGN_OR_RAISE(
          auto scaled, arrow::compute::CallFunction("multiply_checked",
                                                    {time, arrow::Datum(plan.per_ms)}, &context));
      time = scaled.make_array();
    }
    if (time->offset() != 0) {
      ARROW_ASSIGN_OR_RAISE(time, arrow::Concatenate({time}, pool));
    }
    columns.push_back(time);
    if (side.window_index >= 0) {
      // The start of each row's tumbling window: floor(t / size) * size (null for null t).
      const auto& t = static_cast<const arrow::Int64Array&>(*time);
      const int64_t size = plan.window;
      ARROW_ASSIGN_OR_RAISE(auto starts,
                            arrow::AllocateBuffer(t.length() * int64_t{sizeof(int64_t)}, pool));
      auto* out = reinterpret_cast<int64_t*>(starts->mutable_data());
      for (int64_t i = 0; i < t.length(); ++i) {
        const int64_t v = t.Value(i);
        const int64_t rem = ((v % size) + size) % size;
        out[i] = v - rem;
      }
      columns.push_back(std::make_shared<arrow::Int64Array>(
          t.length(), std::move(starts), t.null_count() > 0 ? t.null_bitmap() : nullptr,
          t.null_count()));
    }
  }
  return arrow::RecordBatch::Make(side.prepared, batch.num_rows(), std::move(columns));
}

// What both join operators do first with a batch of input `input`: checks the input number,
// adds the batch's rows to `*rows_in`, and returns it prepared (Prepare), or null when it is empty.
arrow::Result<std::shared_ptr<arrow::RecordBatch>> PrepareInput(const JoinPlan& plan,
                                                                int32_t input,
                                                                const arrow::RecordBatch& batch,
                                                                arrow::MemoryPool* pool,
                                                                int64_t* rows_in) {
  if (input != 0 && input != 1) {
    return arrow::Status::Invalid("a join has inputs 0 (left) and 1 (right), got ", input);
  }
  *rows_in += batch.num_rows();
  if (batch.num_rows() == 0) return nullptr;
  return Prepare(plan, input == 0 ? plan.left : plan.right, batch, pool);
}

// Runs the join of `left` and `right` (prepared tables) with Acero on the calling thread and
// emits its output renamed to the plan's output schema; adds the rows emitted to `*rows_out`.
arrow::Status RunAcero(const JoinPlan& plan, std::shared_ptr<arrow::Table> left,
                       std::shared_ptr<arrow::Table> right, arrow::MemoryPool* pool,
                       OperatorOutput* out, int64_t* rows_out) {
  ac::Declaration join{"hashjoin",
                       {ac::Declaration{"table_source", ac::TableSourceNodeOptions(left)},
                        ac::Declaration{"table_source", ac::TableSourceNodeOptions(right)}},
                       plan.Options()};
  left.reset();
  right.reset();
  ac::QueryOptions options;
  options.use_threads = false;  // on this task's thread: the pool runs the other tasks
  options.memory_pool = pool;
  ARROW_ASSIGN_OR_RAISE(auto reader, ac::DeclarationToReader(std::move(join), options));
  while (true) {
    std::shared_ptr<arrow::RecordBatch> batch;
    ARROW_RETURN_NOT_OK(reader->ReadNext(&batch));
    if (batch == nullptr) break;
    if (batch->num_rows() == 0) continue;
    *rows_out += batch->num_rows();
    ARROW_RETURN_NOT_OK(
        out->Emit(arrow::RecordBatch::Make(plan.output, batch->num_rows(), batch->columns())));
  }
  return reader->Close();
}

// Output batches of the integer-key join hold at most this many rows.
constexpr int64_t kJoinOutputRows = 64 * 1024;

// Whether JoinOnIntegerKey can join for `plan`: a hash join (no time) on one key whose prepared
// type (one type on both sides, JoinSide::prepared) is an integer type.
bool JoinsOnIntegerKey(const JoinPlan& plan) {
  if (plan.params.time != JoinTime::kNone || plan.left.keys.size() != 1) return false;
  const int index = plan.right.prepared->GetFieldIndex(plan.right.key_names[0]);
  return index >= 0 && arrow::is_integer(plan.right.prepared->field(index)->type()->id());
}

// An integer key column's values as uint64 (sign-extended: equal values of the one key type
// both sides have stay equal, distinct ones distinct), and its validity.
void ReadIntegerKeys(const arrow::ArrayData& keys, std::vector<uint64_t>* values) {
  const int64_t n = keys.length;
  values->resize(static_cast<size_t>(n));
  uint64_t* out = values->data();
  switch (keys.type->id()) {
#define SABOT_READ_KEYS(ID, CTYPE)                                           \
  case arrow::Type::ID: {                                                    \
    const CTYPE* in = keys.GetValues<CTYPE>(1);                              \
    for (int64_t i = 0; i < n; ++i) out[i] = static_cast<uint64_t>(in[i]);   \
    break;                                                                   \
  }
    SABOT_READ_KEYS(INT8, int8_t)
    SABOT_READ_KEYS(INT16, int16_t)
    SABOT_READ_KEYS(INT32, int32_t)
    SABOT_READ_KEYS(INT64, int64_t)
    SABOT_READ_KEYS(UINT8, uint8_t)
    SABOT_READ_KEYS(UINT16, uint16_t)
    SABOT_READ_KEYS(UINT32, uint32_t)
    SABOT_READ_KEYS(UINT64, uint64_t)
#undef SABOT_READ_KEYS
    default:
      break;
  }
}

// The hash join on one integer key, for the common case Acero's general join handles slower (its
// row-format hash table and decoding; docs/performance.md, "Stateful operators"): an
// open-addressing table of the right input's keys (linear probing, sized to at most half full,
// each slot the key and its first row, duplicate keys chained through `next_`), probed with each
// left batch (slots prefetched a few rows ahead), the matching rows gathered with Arrow's Take.
// Null keys never match. Every join type; right rows matched are marked for right, full,
// right_semi and right_anti, which emit their right-only rows after the probe.
class IntegerKeyJoin {
 public:
  IntegerKeyJoin(const JoinPlan& plan, arrow::MemoryPool* pool, OperatorOutput* out,
                 int64_t* rows_out)
      : plan_(plan), pool_(pool), context_(pool), out_(out), rows_out_(rows_out) {}

  arrow::Status Run(std::vector<std::shared_ptr<arrow::RecordBatch>> left,
                    std::vector<std::shared_ptr<arrow::RecordBatch>> right) {
    ARROW_ASSIGN_OR_RAISE(auto right_table,
                          arrow::Table::FromRecordBatches(plan_.right.prepared, std::move(right)));
    ARROW_ASSIGN_OR_RAISE(build_, right_table->CombineChunksToBatch(pool_));
    right_table.reset();
    Build();
    const JoinType how = plan_.params.how;
    if (how == JoinType::kRight || how == JoinType::kFull || how == JoinType::kRightSemi ||
        how == JoinType::kRightAnti) {
      right_matched_.assign(static_cast<size_t>(build_->num_rows()), 0);
    }
    for (auto& batch : left) {
      ARROW_RETURN_NOT_OK(Probe(*batch));
      batch.reset();
    }
    return EmitRightRows();
  }

 private:
  static constexpr uint32_t kNone = std::numeric_limits<uint32_t>::max();
  struct Slot {
    uint64_t key = 0;
    uint32_t head = kNone;  // kNone: empty
    uint32_t more = 0;      // 1 when other rows of the key follow `head` through next_
  };
  // Slots of the rows ahead are prefetched: building and probing wait on memory, not on
  // arithmetic.
  static constexpr int64_t kAhead = 16;

  static uint64_t Hash(uint64_t key) { return Fmix64(key); }

  int KeyColumn(const JoinSide& side) const {
    return side.prepared->GetFieldIndex(side.key_names[0]);
  }

  void Build() {
    const arrow::ArrayData& keys = *build_->column_data(KeyColumn(plan_.right));
    std::vector<uint64_t> values;
    ReadIntegerKeys(keys, &values);
    const int64_t n = keys.length;
    uint64_t capacity = 16;
    while (capacity < static_cast<uint64_t>(n) * 2) capacity *= 2;
    mask_ = capacity - 1;
    slots_.assign(capacity, Slot{});
    next_.assign(static_cast<size_t>(n), kNone);
    const uint8_t* valid = keys.GetValues<uint8_t>(0, 0);
    hashes_.resize(static_cast<size_t>(n));
    for (int64_t j = 0; j < n; ++j) hashes_[j] = Hash(values[j]) & mask_;
    for (int64_t j = 0; j < n; ++j) {
      if (j + kAhead < n) __builtin_prefetch(&slots_[hashes_[j + kAhead]], 1);
      if (valid != nullptr && !arrow::bit_util::GetBit(valid, keys.offset + j)) continue;
      const uint64_t key = values[j];
      uint64_t s = hashes_[j];
      while (slots_[s].head != kNone && slots_[s].key != key) s = (s + 1) & mask_;
      if (slots_[s].head != kNone) {
        next_[j] = slots_[s].head;
        slots_[s].more = 1;
      }
      slots_[s].key = key;
      slots_[s].head = static_cast<uint32_t>(j);
    }
  }

  // The slot of key `key` (first looked at: `s`), or null.
  const Slot* Find(uint64_t key, uint64_t s) const {
    while (true) {
      const Slot& slot = slots_[s];
      if (slot.head == kNone) return nullptr;
      if (slot.key == key) return &slot;
      s = (s + 1) & mask_;
    }
  }

  // The right rows of `slot` (null: none), the first first; next_ is read only for keys with
  // several rows.
  template <typename Visit>
  static void ForEachRow(const Slot* slot, const std::vector<uint32_t>& next, Visit&& visit) {
    if (slot == nullptr) return;
    if (slot->more == 0) {
      visit(slot->head);
      return;
    }
    for (uint32_t j = slot->head; j != kNone; j = next[j]) visit(j);
  }

  arrow::Status Probe(const arrow::RecordBatch& batch) {
    const arrow::ArrayData& keys = *batch.column_data(KeyColumn(plan_.left));
    ReadIntegerKeys(keys, &probe_keys_);
    const int64_t n = keys.length;
    const uint8_t* valid = keys.GetValues<uint8_t>(0, 0);
    const JoinType how = plan_.params.how;
    const bool pairs = how == JoinType::kInner || how == JoinType::kLeft ||
                       how == JoinType::kRight || how == JoinType::kFull;
    const bool left_unmatched = how == JoinType::kLeft || how == JoinType::kFull;
    hashes_.resize(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) hashes_[i] = Hash(probe_keys_[i]) & mask_;
    left_rows_.clear();
    right_rows_.clear();
    for (int64_t i = 0; i < n; ++i) {
      if (i + kAhead < n) __builtin_prefetch(&slots_[hashes_[i + kAhead]]);
      const Slot* slot = nullptr;
      if (valid == nullptr || arrow::bit_util::GetBit(valid, keys.offset + i)) {
        slot = Find(probe_keys_[i], hashes_[i]);
      }
      if (pairs) {
        if (slot == nullptr) {
          if (left_unmatched) {
            left_rows_.push_back(static_cast<int32_t>(i));
            right_rows_.push_back(kNone);
          }
        } else {
          // Output batches stay within kJoinOutputRows also when one key has more matches.
          for (uint32_t j = slot->head; j != kNone; j = slot->more != 0 ? next_[j] : kNone) {
            left_rows_.push_back(static_cast<int32_t>(i));
            right_rows_.push_back(j);
            if (!right_matched_.empty()) right_matched_[j] = 1;
            if (static_cast<int64_t>(left_rows_.size()) == kJoinOutputRows) {
              ARROW_RETURN_NOT_OK(EmitPairs(batch));
            }
          }
        }
        if (static_cast<int64_t>(left_rows_.size()) == kJoinOutputRows) {
          ARROW_RETURN_NOT_OK(EmitPairs(batch));
        }
      } else if (how == JoinType::kSemi || how == JoinType::kAnti) {
        if ((slot != nullptr) == (how == JoinType::kSemi)) {
          left_rows_.push_back(static_cast<int32_t>(i));
        }
      } else {
        ForEachRow(slot, next_, [&](uint32_t j) { right_matched_[j] = 1; });
      }
    }
    if (pairs) return EmitPairs(batch);
    if (how == JoinType::kSemi || how == JoinType::kAnti) {
      if (left_rows_.empty()) return arrow::Status::OK();
      ARROW_ASSIGN_OR_RAISE(auto columns, TakeColumns(batch, plan_.left, left_rows_, nullptr));
      return Emit(static_cast<int64_t>(left_rows_.size()), std::move(columns));
    }
    return arrow::Status::OK();
  }

  // The input columns of `side` of `batch` at `rows` (null rows where `rows` holds kNone, when
  // `nulls` is set). Consecutive rows (each left row matching once) are sliced, not copied.
  arrow::Result<arrow::ArrayVector> TakeColumns(const arrow::RecordBatch& batch,
                                                const JoinSide& side,
                                                const std::vector<int32_t>& rows,
                                                const std::vector<uint32_t>* nulls) {
    const int64_t n = static_cast<int64_t>(rows.size());
    arrow::ArrayVector columns;
    const int num_columns = side.input->num_fields();
    bool consecutive = nulls == nullptr && n > 0;
    for (int64_t i = 1; consecutive && i < n; ++i) consecutive = rows[i] == rows[i - 1] + 1;
    if (consecutive) {
      for (int c = 0; c < num_columns; ++c) columns.push_back(batch.column(c)->Slice(rows[0], n));
      return columns;
    }
    ARROW_ASSIGN_OR_RAISE(auto values, arrow::AllocateBuffer(n * int64_t{sizeof(int32_t)}, pool_));
    std::memcpy(values->mutable_data(), rows.data(), static_cast<size_t>(n) * sizeof(int32_t));
    std::shared_ptr<arrow::Buffer> validity;
    int64_t null_count = 0;
    if (nulls != nullptr) {
      for (int64_t i = 0; i < n; ++i) null_count += (*nulls)[i] == kNone;
      if (null_count > 0) {
        ARROW_ASSIGN_OR_RAISE(validity, arrow::AllocateBitmap(n, pool_));
        uint8_t* bits = validity->mutable_data();
        for (int64_t i = 0; i < n; ++i) arrow::bit_util::SetBitTo(bits, i, (*nulls)[i] != kNone);
      }
    }
    auto indices = std::make_shared<arrow::Int32Array>(n, std::move(values), std::move(validity),
                                                      null_count);
    for (int c = 0; c < num_columns; ++c) {
      ARROW_ASSIGN_OR_RAISE(arrow::Datum taken,
                            arrow::compute::Take(batch.column(c), indices,
                                                 arrow::compute::TakeOptions::NoBoundsCheck(),
                                                 &context_));
      columns.push_back(taken.make_array());
    }
    return columns;
  }

  arrow::Status EmitPairs(const arrow::RecordBatch& batch) {
    const int64_t n = static_cast<int64_t>(left_rows_.size());
    if (n == 0) return arrow::Status::OK();
    ARROW_ASSIGN_OR_RAISE(auto columns, TakeColumns(batch, plan_.left, left_rows_, nullptr));
    right_index_.resize(right_rows_.size());
    for (size_t i = 0; i < right_rows_.size(); ++i) {
      right_index_[i] = right_rows_[i] == kNone ? 0 : static_cast<int32_t>(right_rows_[i]);
    }
    ARROW_ASSIGN_OR_RAISE(auto right, TakeColumns(*build_, plan_.right, right_index_,
                                                  &right_rows_));
    for (auto& column : right) columns.push_back(std::move(column));
    left_rows_.clear();
    right_rows_.clear();
    return Emit(n, std::move(columns));
  }

  // After the probe: right rows never matched (right, full: with null left columns;
  // right_anti) or matched (right_semi).
  arrow::Status EmitRightRows() {
    if (right_matched_.empty()) return arrow::Status::OK();
    const JoinType how = plan_.params.how;
    const uint8_t wanted = how == JoinType::kRightSemi ? 1 : 0;
    std::vector<int32_t> rows;
    const int64_t n = build_->num_rows();
    for (int64_t j = 0; j <= n; ++j) {
      if (j == n || static_cast<int64_t>(rows.size()) == kJoinOutputRows) {
        if (rows.empty()) continue;
        ARROW_ASSIGN_OR_RAISE(auto right, TakeColumns(*build_, plan_.right, rows, nullptr));
        arrow::ArrayVector columns;
        if (how == JoinType::kRight || how == JoinType::kFull) {
          for (const auto& field : plan_.left.input->fields()) {
            ARROW_ASSIGN_OR_RAISE(auto nulls,
                                  arrow::MakeArrayOfNull(field->type(),
                                                         static_cast<int64_t>(rows.size()), pool_));
            columns.push_back(std::move(nulls));
          }
        }
        for (auto& column : right) columns.push_back(std::move(column));
        ARROW_RETURN_NOT_OK(Emit(static_cast<int64_t>(rows.size()), std::move(columns)));
        rows.clear();
      }
      if (j == n) break;
      // A right row with a null key matches nothing: unmatched.
      if (right_matched_[j] == wanted) rows.push_back(static_cast<int32_t>(j));
    }
    return arrow::Status::OK();
  }

  arrow::Status Emit(int64_t rows, arrow::ArrayVector columns) {
    *rows_out_ += rows;
    return out_->Emit(arrow::RecordBatch::Make(plan_.output, rows, std::move(columns)));
  }

  const JoinPlan& plan_;
  arrow::MemoryPool* pool_;
  arrow::compute::ExecContext context_;
  OperatorOutput* out_;
  int64_t* rows_out_;
  std::shared_ptr<arrow::RecordBatch> build_;  // the right input, one batch
  std::vector<Slot> slots_;
  uint64_t mask_ = 0;
  std::vector<uint32_t> next_;            // per right row: the next right row of its key
  std::vector<uint8_t> right_matched_;    // per right row, when right rows are emitted alone
  std::vector<uint64_t> probe_keys_;      // scratch of Probe
  std::vector<uint64_t> hashes_;          // scratch of Build and Probe: each row's first slot
  std::vector<int32_t> left_rows_;        // pairs gathered, left side
  std::vector<uint32_t> right_rows_;      // pairs gathered, right side (kNone: no right row)
  std::vector<int32_t> right_index_;      // scratch of EmitPairs
};

// Joins `left` and `right` (prepared batches) and emits the output: on one integer key with
// IntegerKeyJoin, otherwise with Acero.
arrow::Status RunHashJoin(const JoinPlan& plan,
                          std::vector<std::shared_ptr<arrow::RecordBatch>> left,
                          std::vector<std::shared_ptr<arrow::RecordBatch>> right,
                          arrow::MemoryPool* pool, OperatorOutput* out, int64_t* rows_out) {
  int64_t right_rows = 0;
  for (const auto& batch : right) right_rows += batch->num_rows();
  // Row numbers of the right input are 32-bit there.
  if (JoinsOnIntegerKey(plan) && right_rows < std::numeric_limits<int32_t>::max()) {
    IntegerKeyJoin join(plan, pool, out, rows_out);
    return join.Run(std::move(left), std::move(right));
  }
  ARROW_ASSIGN_OR_RAISE(auto left_table,
                        arrow::Table::FromRecordBatches(plan.left.prepared, std::move(left)));
  ARROW_ASSIGN_OR_RAISE(auto right_table,
                        arrow::Table::FromRecordBatches(plan.right.prepared, std::move(right)));
  return RunAcero(plan, std::move(left_table), std::move(right_table), pool, out, rows_out);
}

// Whether the join of a partition holding rows of the left input (`left`) and of the right
// input (`right`) can emit anything: an inner or semi join needs both, a left (right) outer or
// anti join its left (right) input.
bool CanEmit(JoinType how, bool left, bool right) {
  switch (how) {
    case JoinType::kInner:
    case JoinType::kSemi:
    case JoinType::kRightSemi:
      return left && right;
    case JoinType::kLeft:
    case JoinType::kAnti:
      return left;
    case JoinType::kRight:
    case JoinType::kRightAnti:
      return right;
    case JoinType::kFull:
      return left || right;
  }
  return true;
}

// One task of a hash join of bounded inputs: buffers both inputs (copied into the task's pool)
// and joins them at Finish — a grace hash join when they outgrow the task's state budget
// (TaskContext::state_budget_bytes). The bytes of the buffered batches are counted; past the
// budget, the buffered rows of both inputs and every row arriving later are written to
// kSpillPartitions Arrow IPC files per input by a hash of their join keys (the prepared keys,
// of one type on both sides, so equal keys of both inputs land in the same partition). Finish
// then joins partition by partition: a partition whose two files together still exceed the
// budget is split again one level down (the hash remixed), up to kMaxSpillLevel; a partition
// whose rows all stay in one sub-partition (one hot key, or keys whose hashes collide at every
// level) cannot be split and is joined in memory anyway, over the budget (docs/dataflow.md,
// "Joins"). Spill files are removed as their partition is joined, and all at Finish and Abort.
class HashJoinOperator : public Operator {
 public:
  HashJoinOperator(std::shared_ptr<const JoinPlan> plan, const TaskContext& task)
      : plan_(std::move(plan)),
        pool_(task.pool),
        budget_(task.state_budget_bytes),
        spill_(task.spill_directory, SpillDirectoryName("join", task),
               "join '" + (task.spec != nullptr ? task.spec->name : std::string()) + "'") {}

  arrow::Status Process(int32_t input, const std::shared_ptr<arrow::RecordBatch>& batch,
                        OperatorOutput* out) override {
    ARROW_ASSIGN_OR_RAISE(auto prepared, PrepareInput(*plan_, input, *batch, pool_, &rows_in_));
    if (prepared == nullptr) return arrow::Status::OK();
    if (spilled_[0] != nullptr) return SpillRows(input, prepared, *spilled_[input]);
    buffered_bytes_ += arrow::util::TotalBufferSize(*prepared);
    buffered_[input].push_back(std::move(prepared));
    if (budget_ > 0 && buffered_bytes_ > budget_) return StartSpilling();
    return arrow::Status::OK();
  }

  // Holds the watermark back: every output row comes at Finish, so a watermark passed on now
  // would make them all late downstream. The end of time follows Finish (task_runner.h).
  arrow::Status OnWatermark(WatermarkMs watermark, OperatorOutput* out) override {
    return arrow::Status::OK();
  }

  arrow::Status Finish(OperatorOutput* out) override {
    if (spilled_[0] == nullptr) {
      std::vector<std::shared_ptr<arrow::RecordBatch>> left = std::move(buffered_[0]);
      std::vector<std::shared_ptr<arrow::RecordBatch>> right = std::move(buffered_[1]);
      buffered_[0].clear();
      buffered_[1].clear();
      return RunHashJoin(*plan_, std::move(left), std::move(right), pool_, out, &rows_out_);
    }
    ARROW_RETURN_NOT_OK(spilled_[0]->Close());
    ARROW_RETURN_NOT_OK(spilled_[1]->Close());
    for (int32_t p = 0; p < kSpillPartitions; ++p) {
      ARROW_RETURN_NOT_OK(JoinPartition(*spilled_[0], *spilled_[1], p, true, out));
    }
    spilled_[0].reset();
    spilled_[1].reset();
    spill_.Remove();
    return arrow::Status::OK();
  }

  void Abort() override {
    buffered_[0].clear();
    buffered_[1].clear();
    spilled_[0].reset();
    spilled_[1].reset();
    spill_.Remove();
  }

  int64_t rows_in() const override { return rows_in_; }
  int64_t rows_out() const override { return rows_out_; }
  int64_t state_spilled_bytes() const override { return spill_.spilled_bytes(); }

  // The snapshot: parts "left" and "right", every row buffered of each input (prepared schema).
  // Grace-spilled rows are read back from their files (closed for it), and written again to
  // new files that the join goes on appending to.
  arrow::Status Snapshot(CheckpointId, StateWriter* state) override {
    for (int input = 0; input < 2; ++input) {
      std::vector<std::shared_ptr<arrow::RecordBatch>> batches = buffered_[input];
      if (spilled_[input] != nullptr) {
        ARROW_RETURN_NOT_OK(spilled_[input]->Close());
        for (int32_t p = 0; p < kSpillPartitions; ++p) {
          ARROW_RETURN_NOT_OK(spilled_[input]->Read(p, [&](std::shared_ptr<arrow::RecordBatch> b) {
            batches.push_back(std::move(b));
            return arrow::Status::OK();
          }));
        }
        auto again = std::make_unique<SpillPartitions>(
            &spill_, std::string(input == 0 ? "left" : "right") + std::to_string(++generation_),
            0, pool_);
        for (const auto& batch : batches) ARROW_RETURN_NOT_OK(SpillRows(input, batch, *again));
        for (int32_t p = 0; p < kSpillPartitions; ++p) spilled_[input]->Remove(p);
        spilled_[input] = std::move(again);
      }
      ARROW_ASSIGN_OR_RAISE(auto table,
                            arrow::Table::FromRecordBatches(Side(input).prepared, batches));
      ARROW_RETURN_NOT_OK(state->Put(input == 0 ? "left" : "right", std::move(table)));
    }
    return arrow::Status::OK();
  }

  arrow::Status Restore(CheckpointId, StateReader* state) override {
    for (int input = 0; input < 2; ++input) {
      ARROW_ASSIGN_OR_RAISE(auto table, state->Get(input == 0 ? "left" : "right"));
      if (table == nullptr) continue;
      if (!table->schema()->Equals(*Side(input).prepared)) {
        return arrow::Status::Invalid(spill_.owner(), ": the snapshot's ",
                                      input == 0 ? "left" : "right", " rows have columns (",
                                      table->schema()->ToString(), "), not (",
                                      Side(input).prepared->ToString(), ")");
      }
      arrow::TableBatchReader reader(*table);
      std::shared_ptr<arrow::RecordBatch> batch;
      while (true) {
        ARROW_RETURN_NOT_OK(reader.ReadNext(&batch));
        if (batch == nullptr) break;
        if (batch->num_rows() == 0) continue;
        if (spilled_[0] != nullptr) {
          ARROW_RETURN_NOT_OK(SpillRows(input, batch, *spilled_[input]));
          continue;
        }
        buffered_bytes_ += arrow::util::TotalBufferSize(*batch);
        buffered_[input].push_back(std::move(batch));
        if (budget_ > 0 && buffered_bytes_ > budget_) ARROW_RETURN_NOT_OK(StartSpilling());
      }
    }
    return arrow::Status::OK();
  }

 private:
  const JoinSide& Side(int input) const { return input == 0 ? plan_->left : plan_->right; }

  // The budget is exceeded: from now on both inputs go to level-0 spill partitions, starting
  // with what is buffered.
  arrow::Status StartSpilling() {
    for (int input = 0; input < 2; ++input) {
      ARROW_ASSIGN_OR_RAISE(hashers_[input],
                            KeyHasher::Make(Side(input).key_names, *Side(input).prepared));
      spilled_[input] = std::make_unique<SpillPartitions>(&spill_, input == 0 ? "left" : "right",
                                                          0, pool_);
    }
    for (int input = 0; input < 2; ++input) {
      std::vector<std::shared_ptr<arrow::RecordBatch>> batches = std::move(buffered_[input]);
      buffered_[input].clear();
      for (auto& batch : batches) {
        ARROW_RETURN_NOT_OK(SpillRows(input, batch, *spilled_[input]));
        batch.reset();
      }
    }
    buffered_bytes_ = 0;
    return arrow::Status::OK();
  }

  arrow::Status SpillRows(int input, const std::shared_ptr<arrow::RecordBatch>& rows,
                          SpillPartitions& partitions) {
    hashes_.resize(static_cast<size_t>(rows->num_rows()));
    ARROW_RETURN_NOT_OK(hashers_[input]->Hash(*rows, hashes_.data()));
    return partitions.Append(rows, hashes_.data());
  }

  // Joins partition `p` of `left` and `right` (closed) and removes its files: in memory when
  // it fits the budget or cannot be split (`splittable` false, or the last level), otherwise
  // split one level down and joined sub-partition by sub-partition.
  arrow::Status JoinPartition(SpillPartitions& left, SpillPartitions& right, int32_t p,
                              bool splittable, OperatorOutput* out) {
    const bool has_left = left.has(p);
    const bool has_right = right.has(p);
    if (!CanEmit(plan_->params.how, has_left, has_right)) {
      left.Remove(p);
      right.Remove(p);
      return arrow::Status::OK();
    }
    const int level = left.level() + 1;
    if (splittable && level < kMaxSpillLevel && left.bytes(p) + right.bytes(p) > budget_) {
      SpillPartitions sub_left(&spill_, left.prefix() + "-" + std::to_string(p), level, pool_);
      SpillPartitions sub_right(&spill_, right.prefix() + "-" + std::to_string(p), level, pool_);
      ARROW_RETURN_NOT_OK(left.Read(p, [&](std::shared_ptr<arrow::RecordBatch> batch) {
        return SpillRows(0, batch, sub_left);
      }));
      left.Remove(p);
      ARROW_RETURN_NOT_OK(right.Read(p, [&](std::shared_ptr<arrow::RecordBatch> batch) {
        return SpillRows(1, batch, sub_right);
      }));
      right.Remove(p);
      ARROW_RETURN_NOT_OK(sub_left.Close());
      ARROW_RETURN_NOT_OK(sub_right.Close());
      for (int32_t q = 0; q < kSpillPartitions; ++q) {
        // Every row of the partition went to q: its keys do not split (a hot key).
        const bool all_here = sub_left.rows(q) + sub_right.rows(q) ==
                              left.rows(p) + right.rows(p);
        ARROW_RETURN_NOT_OK(JoinPartition(sub_left, sub_right, q, !all_here, out));
      }
      return arrow::Status::OK();
    }
    std::vector<std::shared_ptr<arrow::RecordBatch>> batches[2];
    ARROW_RETURN_NOT_OK(left.Read(p, [&](std::shared_ptr<arrow::RecordBatch> batch) {
      batches[0].push_back(std::move(batch));
      return arrow::Status::OK();
    }));
    left.Remove(p);
    ARROW_RETURN_NOT_OK(right.Read(p, [&](std::shared_ptr<arrow::RecordBatch> batch) {
      batches[1].push_back(std::move(batch));
      return arrow::Status::OK();
    }));
    right.Remove(p);
    return RunHashJoin(*plan_, std::move(batches[0]), std::move(batches[1]), pool_, out,
                       &rows_out_);
  }

  const std::shared_ptr<const JoinPlan> plan_;
  arrow::MemoryPool* const pool_;
  const int64_t budget_;  // 0: no limit
  SpillDirectory spill_;  // outlives spilled_
  std::vector<std::shared_ptr<arrow::RecordBatch>> buffered_[2];
  int64_t buffered_bytes_ = 0;
  // Spilling: the level-0 partitions of each input (null until the budget is exceeded) and the
  // key hashers of both inputs' prepared batches.
  std::unique_ptr<SpillPartitions> spilled_[2];
  std::unique_ptr<KeyHasher> hashers_[2];
  std::vector<uint64_t> hashes_;
  int64_t generation_ = 0;  // names the spill files each snapshot writes again
  int64_t rows_in_ = 0;
  int64_t rows_out_ = 0;
};

// One task of a window or interval join: each batch is joined at once with what the task
// holds of the other input, then held itself until the watermark says no later row can match it.
class TimeJoinOperator : public Operator {
 public:
  TimeJoinOperator(std::shared_ptr<const JoinPlan> plan, const TaskContext& task)
      : plan_(std::move(plan)),
        pool_(task.pool),
        budget_(task),
        spill_(task.spill_directory, SpillDirectoryName("join", task),
               "join '" + budget_.operator_name + "'") {}

  arrow::Status Process(int32_t input, const std::shared_ptr<arrow::RecordBatch>& batch,
                        OperatorOutput* out) override {
    ARROW_ASSIGN_OR_RAISE(auto prepared, PrepareInput(*plan_, input, *batch, pool_, &rows_in_));
    if (prepared == nullptr) return arrow::Status::OK();
    const JoinSide& side = input == 0 ? plan_->left : plan_->right;
    // Late rows: their window fired (window join) or their time is below the watermark
    // (interval join); the rows they could have met may be gone. Counted, not joined.
    if (watermark_ != kNoWatermark) {
      const int64_t rows = prepared->num_rows();
      ARROW_ASSIGN_OR_RAISE(prepared, KeepFrom(side, prepared, LateBound()));
      late_rows_ += rows - (prepared == nullptr ? 0 : prepared->num_rows());
      if (prepared == nullptr) return arrow::Status::OK();
    }
    if (disk_[0] != nullptr) return ProcessSpilled(input, std::move(prepared), out);
    std::vector<Held>& other = held_[1 - input];
    if (!other.empty()) {
      std::vector<std::shared_ptr<arrow::RecordBatch>> batches;
      for (const Held& h : other) batches.push_back(h.batch);
      ARROW_RETURN_NOT_OK(Join(input, prepared, batches, out));
    }
    ARROW_ASSIGN_OR_RAISE(Held held, MakeHeld(side, std::move(prepared)));
    held_bytes_ += held.bytes;
    held_[input].push_back(std::move(held));
    if (budget_.bytes > 0 && held_bytes_ > budget_.bytes) return StartSpilling();
    return arrow::Status::OK();
  }

  arrow::Status OnWatermark(WatermarkMs watermark, OperatorOutput* out) override {
    watermark_ = watermark;
    ARROW_RETURN_NOT_OK(Evict(0, EvictBound(0)));
    ARROW_RETURN_NOT_OK(Evict(1, EvictBound(1)));
    if (disk_[0] != nullptr) {
      ARROW_RETURN_NOT_OK(EvictSpilled(0, EvictBound(0)));
      ARROW_RETURN_NOT_OK(EvictSpilled(1, EvictBound(1)));
      if (disk_[0]->empty() && disk_[1]->empty()) {
        // Everything held was evicted: back to memory.
        disk_[0].reset();
        disk_[1].reset();
      }
    }
    if (watermark == kEndOfTimeWatermark) return out->EmitWatermark(watermark);
    // A pair emitted later holds one row that arrives later (time >= W) and one held row, whose
    // time is at least W - after / W - before (interval) or in a window ending after W: both
    // time columns of later pairs are >= what is passed on.
    const JoinParams& p = plan_->params;
    const int64_t margin = p.time == JoinTime::kWindow ? p.window.count() - 1
                                                       : std::max(p.before, p.after).count();
    const WatermarkMs passed = SaturatingSub(watermark, margin);
    if (passed <= passed_) return arrow::Status::OK();
    passed_ = passed;
    return out->EmitWatermark(passed);
  }

  arrow::Status Finish(OperatorOutput* out) override {
    Abort();
    return arrow::Status::OK();
  }

  void Abort() override {
    held_[0].clear();
    held_[1].clear();
    held_bytes_ = 0;
    disk_[0].reset();
    disk_[1].reset();
    spill_.Remove();
  }

  int64_t rows_in() const override { return rows_in_; }
  int64_t rows_out() const override { return rows_out_; }
  // Rows dropped because they arrived after the watermark made them late (see Process).
  int64_t late_rows() const override { return late_rows_; }
  int64_t state_spilled_bytes() const override { return spill_.spilled_bytes(); }

  // The snapshot: parts "left" and "right", the held rows of each input (prepared schema; read
  // back from disk when spilled), and "progress": the watermark, the watermark passed on and
  // the late-row count.
  arrow::Status Snapshot(CheckpointId, StateWriter* state) override {
    for (int input = 0; input < 2; ++input) {
      std::vector<std::shared_ptr<arrow::RecordBatch>> batches;
      for (const Held& held : held_[input]) batches.push_back(held.batch);
      if (disk_[input] != nullptr) {
        for (int32_t p = 0; p < kSpillPartitions; ++p) {
          ARROW_RETURN_NOT_OK(disk_[input]->Read(p, [&](std::shared_ptr<arrow::RecordBatch> b) {
            batches.push_back(std::move(b));
            return arrow::Status::OK();
          }));
        }
      }
      ARROW_ASSIGN_OR_RAISE(auto table,
                            arrow::Table::FromRecordBatches(Side(input).prepared, batches));
      ARROW_RETURN_NOT_OK(state->Put(input == 0 ? "left" : "right", std::move(table)));
    }
    return state->Put("progress", Int64Row({{"watermark", watermark_},
                                            {"passed", passed_},
                                            {"late_rows", late_rows_}}));
  }

  arrow::Status Restore(CheckpointId, StateReader* state) override {
    for (int input = 0; input < 2; ++input) {
      ARROW_ASSIGN_OR_RAISE(auto table, state->Get(input == 0 ? "left" : "right"));
      if (table == nullptr) continue;
      if (!table->schema()->Equals(*Side(input).prepared)) {
        return arrow::Status::Invalid("join '", budget_.operator_name, "': the snapshot's ",
                                      input == 0 ? "left" : "right", " rows have columns (",
                                      table->schema()->ToString(), "), not (",
                                      Side(input).prepared->ToString(), ")");
      }
      arrow::TableBatchReader reader(*table);
      std::shared_ptr<arrow::RecordBatch> batch;
      while (true) {
        ARROW_RETURN_NOT_OK(reader.ReadNext(&batch));
        if (batch == nullptr) break;
        if (batch->num_rows() == 0) continue;
        ARROW_ASSIGN_OR_RAISE(Held held, MakeHeld(Side(input), batch));
        held_bytes_ += held.bytes;
        held_[input].push_back(std::move(held));
      }
    }
    ARROW_ASSIGN_OR_RAISE(auto progress, state->Get("progress"));
    if (progress != nullptr) {
      ARROW_ASSIGN_OR_RAISE(auto values,
                            ReadInt64Row(*progress, {"watermark", "passed", "late_rows"}));
      watermark_ = values[0];
      passed_ = values[1];
      late_rows_ = values[2];
    }
    if (budget_.bytes > 0 && held_bytes_ > budget_.bytes) return StartSpilling();
    return arrow::Status::OK();
  }

 private:
  // A held batch and the range of the column its eviction looks at.
  struct Held {
    std::shared_ptr<arrow::RecordBatch> batch;
    int64_t min = 0;
    int64_t max = 0;
    int64_t bytes = 0;  // of the batch's buffers, charged to the state budget
  };

  // The column eviction and lateness look at: the window start (window join) or the time.
  int EvictionColumn(const JoinSide& side) const {
    return side.window_index >= 0 ? side.window_index : side.time_index;
  }
  // Rows arriving with that column below this are late.
  int64_t LateBound() const {
    if (plan_->params.time == JoinTime::kWindow) {
      // The window [start, start + size) fired once the watermark reached its end.
      return SaturatingSub(Ticks(watermark_), plan_->window) + 1;
    }
    return Ticks(watermark_);
  }
  // Held rows of input `input` with that column below this can match no later row.
  int64_t EvictBound(int input) const {
    if (plan_->params.time == JoinTime::kWindow) return LateBound();
    // A later right row r has r.t >= W: left rows with l.t + after < W are done; a later left
    // row l has l.t >= W: right rows with r.t < W - before are done.
    return SaturatingSub(Ticks(watermark_), input == 0 ? plan_->after : plan_->before);
  }
  // Watermark `ms` in the plan's time unit, saturating at the ends of int64.
  int64_t Ticks(WatermarkMs ms) const {
    int64_t ticks = 0;
    if (!__builtin_mul_overflow(ms, plan_->per_ms, &ticks)) return ticks;
    return ms < 0 ? std::numeric_limits<int64_t>::min() : std::numeric_limits<int64_t>::max();
  }
  static int64_t SaturatingSub(int64_t a, int64_t b) {
    return a < std::numeric_limits<int64_t>::min() + b ? std::numeric_limits<int64_t>::min()
                                                       : a - b;
  }

  arrow::Result<Held> MakeHeld(const JoinSide& side,
                               std::shared_ptr<arrow::RecordBatch> batch) const {
    ARROW_ASSIGN_OR_RAISE(auto range, arrow::compute::MinMax(batch->column(EvictionColumn(side))));
    const auto& pair = range.scalar_as<arrow::StructScalar>().value;
    const int64_t bytes = arrow::util::TotalBufferSize(*batch);
    Held held{std::move(batch), std::numeric_limits<int64_t>::min(),
              std::numeric_limits<int64_t>::min(), bytes};
    if (pair[0]->is_valid) {
      held.min = static_cast<const arrow::Int64Scalar&>(*pair[0]).value;
      held.max = static_cast<const arrow::Int64Scalar&>(*pair[1]).value;
    }
    return held;
  }

  // The rows of `batch` whose eviction column is >= `bound` (null when none is); rows with a
  // null time never match and are dropped.
  arrow::Result<std::shared_ptr<arrow::RecordBatch>> KeepFrom(
      const JoinSide& side, const std::shared_ptr<arrow::RecordBatch>& batch,
      int64_t bound) const {
    arrow::compute::ExecContext context(pool_);
    ARROW_ASSIGN_OR_RAISE(
        auto mask, arrow::compute::CallFunction(
                       "greater_equal",
                       {batch->column(EvictionColumn(side)), arrow::Datum(int64_t{bound})},
                       &context));
    ARROW_ASSIGN_OR_RAISE(auto kept, arrow::compute::Filter(batch, mask,
                                                            arrow::compute::FilterOptions(),
                                                            &context));
    auto result = kept.record_batch();
    if (result->num_rows() == 0) return nullptr;
    return result;
  }

  const JoinSide& Side(int input) const { return input == 0 ? plan_->left : plan_->right; }

  // Joins `mine` (of input `input`) with `theirs` (rows of the other input) and emits the pairs.
  arrow::Status Join(int input, const std::shared_ptr<arrow::RecordBatch>& mine,
                     const std::vector<std::shared_ptr<arrow::RecordBatch>>& theirs,
                     OperatorOutput* out) {
    ARROW_ASSIGN_OR_RAISE(auto other, arrow::Table::FromRecordBatches(Side(1 - input).prepared,
                                                                      theirs));
    ARROW_ASSIGN_OR_RAISE(auto own, arrow::Table::FromRecordBatches(Side(input).prepared, {mine}));
    return RunAcero(*plan_, input == 0 ? own : other, input == 0 ? other : own, pool_, out,
                    &rows_out_);
  }

  // Past the state budget: the held rows of both inputs move to disk by key hash (equal keys of
  // both inputs share a partition), where every later row goes too.
  arrow::Status StartSpilling() {
    for (int input = 0; input < 2; ++input) {
      if (hashers_[input] == nullptr) {
        ARROW_ASSIGN_OR_RAISE(hashers_[input],
                              KeyHasher::Make(Side(input).key_names, *Side(input).prepared));
      }
      disk_[input] = std::make_unique<SpillRuns>(
          &spill_, std::string(input == 0 ? "left" : "right") + std::to_string(next_run_++),
          pool_);
      std::fill(std::begin(disk_min_[input]), std::end(disk_min_[input]),
                std::numeric_limits<int64_t>::max());
    }
    for (int input = 0; input < 2; ++input) {
      std::vector<Held> held = std::move(held_[input]);
      held_[input].clear();
      for (Held& h : held) {
        ARROW_ASSIGN_OR_RAISE(auto split, Split(input, h.batch));
        for (int32_t p = 0; p < kSpillPartitions; ++p) {
          if (split[p] != nullptr) ARROW_RETURN_NOT_OK(Hold(input, p, split[p]));
        }
      }
    }
    held_bytes_ = 0;
    return arrow::Status::OK();
  }

  // `rows` of input `input` split by spill partition of their keys (null: none).
  arrow::Result<std::vector<std::shared_ptr<arrow::RecordBatch>>> Split(
      int input, const std::shared_ptr<arrow::RecordBatch>& rows) {
    const int64_t n = rows->num_rows();
    hashes_.resize(static_cast<size_t>(n));
    ARROW_RETURN_NOT_OK(hashers_[input]->Hash(*rows, hashes_.data()));
    std::vector<std::vector<int64_t>> rows_of(kSpillPartitions);
    for (int64_t i = 0; i < n; ++i) rows_of[disk_[input]->PartitionOf(hashes_[i])].push_back(i);
    std::vector<std::shared_ptr<arrow::RecordBatch>> split(kSpillPartitions);
    arrow::compute::ExecContext context(pool_);
    for (int32_t p = 0; p < kSpillPartitions; ++p) {
      if (rows_of[p].empty()) continue;
      if (static_cast<int64_t>(rows_of[p].size()) == n) {
        split[p] = rows;
        break;
      }
      arrow::Int64Builder indices(pool_);
      ARROW_RETURN_NOT_OK(indices.AppendValues(rows_of[p]));
      ARROW_ASSIGN_OR_RAISE(auto index_array, indices.Finish());
      ARROW_ASSIGN_OR_RAISE(arrow::Datum taken,
                            arrow::compute::Take(rows, index_array,
                                                 arrow::compute::TakeOptions::NoBoundsCheck(),
                                                 &context));
      split[p] = taken.record_batch();
    }
    return split;
  }

  // Writes `rows` (of partition p of input `input`) to disk, keeping the partition's smallest
  // eviction value.
  arrow::Status Hold(int input, int32_t p, const std::shared_ptr<arrow::RecordBatch>& rows) {
    ARROW_ASSIGN_OR_RAISE(Held held, MakeHeld(Side(input), rows));
    disk_min_[input][p] = std::min(disk_min_[input][p], held.min);
    return disk_[input]->AppendTo(p, rows);
  }

  // A batch while the held rows are on disk: per partition of its keys, joined with the other
  // input's rows of that partition (read back), then written to its own.
  arrow::Status ProcessSpilled(int input, std::shared_ptr<arrow::RecordBatch> prepared,
                               OperatorOutput* out) {
    ARROW_ASSIGN_OR_RAISE(auto split, Split(input, prepared));
    prepared.reset();
    for (int32_t p = 0; p < kSpillPartitions; ++p) {
      if (split[p] == nullptr) continue;
      std::vector<std::shared_ptr<arrow::RecordBatch>> theirs;
      ARROW_RETURN_NOT_OK(disk_[1 - input]->Read(p, [&](std::shared_ptr<arrow::RecordBatch> b) {
        theirs.push_back(std::move(b));
        return arrow::Status::OK();
      }));
      if (!theirs.empty()) ARROW_RETURN_NOT_OK(Join(input, split[p], theirs, out));
      ARROW_RETURN_NOT_OK(Hold(input, p, split[p]));
    }
    return arrow::Status::OK();
  }

  // Eviction on disk: a partition holding rows below `bound` is read back and written again
  // without them.
  arrow::Status EvictSpilled(int input, int64_t bound) {
    for (int32_t p = 0; p < kSpillPartitions; ++p) {
      if (disk_min_[input][p] >= bound) continue;
      std::vector<std::shared_ptr<arrow::RecordBatch>> kept;
      ARROW_RETURN_NOT_OK(disk_[input]->Read(p, [&](std::shared_ptr<arrow::RecordBatch> b) {
        ARROW_ASSIGN_OR_RAISE(auto rest, KeepFrom(Side(input), b, bound));
        if (rest != nullptr) kept.push_back(std::move(rest));
        return arrow::Status::OK();
      }));
      disk_[input]->Clear(p);
      disk_min_[input][p] = std::numeric_limits<int64_t>::max();
      for (const auto& rows : kept) ARROW_RETURN_NOT_OK(Hold(input, p, rows));
    }
    return arrow::Status::OK();
  }

  arrow::Status Evict(int input, int64_t bound) {
    const JoinSide& side = input == 0 ? plan_->left : plan_->right;
    std::vector<Held> kept;
    for (Held& held : held_[input]) {
      if (held.min >= bound) {
        kept.push_back(std::move(held));
      } else if (held.max >= bound) {
        ARROW_ASSIGN_OR_RAISE(auto rest, KeepFrom(side, held.batch, bound));
        if (rest != nullptr) {
          ARROW_ASSIGN_OR_RAISE(Held again, MakeHeld(side, std::move(rest)));
          kept.push_back(std::move(again));
        }
      }
    }
    held_[input] = std::move(kept);
    held_bytes_ = 0;
    for (const auto& held : held_) {
      for (const Held& h : held) held_bytes_ += h.bytes;
    }
    return arrow::Status::OK();
  }

  const std::shared_ptr<const JoinPlan> plan_;
  arrow::MemoryPool* const pool_;
  const TaskStateBudget budget_;  // of held rows
  // Past the budget the held rows of both inputs are on disk (disk_ set), by key hash, with
  // each partition's smallest eviction value (disk_min_).
  SpillDirectory spill_;
  std::unique_ptr<KeyHasher> hashers_[2];
  std::unique_ptr<SpillRuns> disk_[2];
  int64_t disk_min_[2][kSpillPartitions] = {};
  std::vector<uint64_t> hashes_;
  int64_t next_run_ = 0;
  std::vector<Held> held_[2];
  int64_t held_bytes_ = 0;  // of both held_ vectors
  WatermarkMs watermark_ = kNoWatermark;
  WatermarkMs passed_ = kNoWatermark;  // the last watermark passed on
  int64_t rows_in_ = 0;
  int64_t rows_out_ = 0;
  int64_t late_rows_ = 0;
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
  if (!context.bounded_input && params.time == JoinTime::kNone) {
    return arrow::Status::NotImplemented(
        "a hash join needs bounded inputs (it joins at the end of both); an input of this "
        "join reads an unbounded source: use a window or interval join");
  }
  if (params.time != JoinTime::kNone) {
    // Held rows are evicted by the watermark, which a source without event time never sends:
    // the join would hold every row of the other input to the end.
    for (const auto& source : context.sources_event_time) {
      if (!source.column.empty()) continue;
      return arrow::Status::Invalid(
          params.time == JoinTime::kWindow ? "a window" : "an interval",
          " join needs every source of both inputs to declare event_time (its watermarks evict "
          "the rows it holds), but source '", source.source, "', feeding it, declares none: add "
          "event_time: {column: ..., max_out_of_orderness: ...} to it, or use a hash join of "
          "bounded inputs");
    }
  }
  ARROW_ASSIGN_OR_RAISE(auto plan, MakeJoinPlan(params, inputs[0], inputs[1]));
  BoundOperator bound;
  bound.output_schema = plan->output;
  if (params.time == JoinTime::kNone) {
    bound.make_operator =
        [plan](const TaskContext& task) -> arrow::Result<std::unique_ptr<Operator>> {
      return std::make_unique<HashJoinOperator>(plan, task);
    };
  } else {
    bound.make_operator =
        [plan](const TaskContext& task) -> arrow::Result<std::unique_ptr<Operator>> {
      return std::make_unique<TimeJoinOperator>(plan, task);
    };
  }
  return bound;
}

}  // namespace sabot
