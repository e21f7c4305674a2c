#include "sabot/dataflow/grouped_aggregation.h"

#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <arrow/array.h>
#include <arrow/buffer.h>
#include <arrow/compute/api_aggregate.h>
#include <arrow/compute/api_vector.h>
#include <arrow/compute/cast.h>
#include <arrow/compute/exec.h>
#include <arrow/compute/function.h>
#include <arrow/compute/kernel.h>
#include <arrow/compute/registry.h>
#include <arrow/compute/row/grouper.h>
#include <arrow/datum.h>
#include <arrow/type.h>
#include <arrow/util/bitmap_ops.h>

#include "sabot/common/arrow_init.h"

namespace sabot {

namespace cp = arrow::compute;

namespace {

// The hash aggregate function of Arrow compute that computes `spec`, and its options (nullptr:
// the function takes none).
struct KernelChoice {
  const char* function;
  std::shared_ptr<cp::FunctionOptions> options;
};

KernelChoice ChooseKernel(const AggregateSpec& spec) {
  // Every function skips null arguments: sum/min/max/mean/first/last of a group whose values
  // are all null is null (min_count 1), count and count_distinct count the non-null values.
  auto skip_nulls = [] {
    return std::make_shared<cp::ScalarAggregateOptions>(/*skip_nulls=*/true, /*min_count=*/1);
  };
  auto only_valid = [] {
    return std::make_shared<cp::CountOptions>(cp::CountOptions::ONLY_VALID);
  };
  switch (spec.function) {
    case AggregateFunction::kCount:
      if (spec.column.empty()) return {"hash_count_all", nullptr};
      return {"hash_count", only_valid()};
    case AggregateFunction::kSum:
      return {"hash_sum", skip_nulls()};
    case AggregateFunction::kMin:
      return {"hash_min", skip_nulls()};
    case AggregateFunction::kMax:
      return {"hash_max", skip_nulls()};
    case AggregateFunction::kMean:
      return {"hash_mean", skip_nulls()};
    case AggregateFunction::kCountDistinct:
      return {"hash_count_distinct", only_valid()};
    case AggregateFunction::kFirst:
      return {"hash_first", skip_nulls()};
    case AggregateFunction::kLast:
      return {"hash_last", skip_nulls()};
    case AggregateFunction::kApproxMedian:
      return {"hash_approximate_median", skip_nulls()};
  }
  return {"", nullptr};
}

// Dictionary columns are grouped and aggregated by their values: batches of one stream may carry
// different dictionaries (one per Parquet row group, per shuffle writer), which Arrow's Grouper
// does not unify.
std::shared_ptr<arrow::DataType> ValueTypeOf(const std::shared_ptr<arrow::DataType>& type) {
  if (type->id() == arrow::Type::DICTIONARY) {
    return static_cast<const arrow::DictionaryType&>(*type).value_type();
  }
  return type;
}

arrow::Result<int> FindColumn(const arrow::Schema& schema, const std::string& name,
                              const std::string& role) {
  const std::vector<int> indices = schema.GetAllFieldIndices(name);
  if (indices.empty()) {
    return arrow::Status::KeyError(role, " '", name, "' is not a column of the input (",
                                   schema.ToString(/*show_metadata=*/false), ")");
  }
  if (indices.size() > 1) {
    return arrow::Status::Invalid(role, " '", name, "' names ", indices.size(),
                                  " columns of the input");
  }
  return indices[0];
}

// The pool an aggregation state allocates from: forwards to the task's pool and counts the bytes
// held (memory_bytes()). Buffers the state allocated may outlive it (Finish hands out the
// kernels' result buffers, which are its states' own), so the pool lives until both its owner
// has released it and its last allocation is freed: it holds one reference per live allocation
// plus the owner's. Thread-safe (a result batch may be freed on another thread).
class TrackingPool final : public arrow::MemoryPool {
 public:
  explicit TrackingPool(arrow::MemoryPool* parent) : parent_(parent) {}

  // Drops the owner's reference; the pool deletes itself once nothing allocated from it lives.
  void Release() { Unref(); }

  using arrow::MemoryPool::Allocate;
  using arrow::MemoryPool::Free;
  using arrow::MemoryPool::Reallocate;
  arrow::Status Allocate(int64_t size, int64_t alignment, uint8_t** out) override {
    ARROW_RETURN_NOT_OK(parent_->Allocate(size, alignment, out));
    references_.fetch_add(1, std::memory_order_relaxed);
    bytes_.fetch_add(size, std::memory_order_relaxed);
    total_.fetch_add(size, std::memory_order_relaxed);
    allocations_.fetch_add(1, std::memory_order_relaxed);
    return arrow::Status::OK();
  }
  arrow::Status Reallocate(int64_t old_size, int64_t new_size, int64_t alignment,
                           uint8_t** ptr) override {
    ARROW_RETURN_NOT_OK(parent_->Reallocate(old_size, new_size, alignment, ptr));
    bytes_.fetch_add(new_size - old_size, std::memory_order_relaxed);
    if (new_size > old_size) total_.fetch_add(new_size - old_size, std::memory_order_relaxed);
    return arrow::Status::OK();
  }
  void Free(uint8_t* buffer, int64_t size, int64_t alignment) override {
    parent_->Free(buffer, size, alignment);
    bytes_.fetch_sub(size, std::memory_order_relaxed);
    Unref();
  }

  int64_t bytes_allocated() const override { return bytes_.load(std::memory_order_relaxed); }
  int64_t total_bytes_allocated() const override {
    return total_.load(std::memory_order_relaxed);
  }
  int64_t num_allocations() const override {
    return allocations_.load(std::memory_order_relaxed);
  }
  std::string backend_name() const override { return parent_->backend_name(); }

 private:
  void Unref() {
    if (references_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

  arrow::MemoryPool* parent_;
  std::atomic<int64_t> references_{1};  // the owner's
  std::atomic<int64_t> bytes_{0};
  std::atomic<int64_t> total_{0};
  std::atomic<int64_t> allocations_{0};
};

struct TrackingPoolRelease {
  void operator()(TrackingPool* pool) const { pool->Release(); }
};

std::string Describe(const AggregateSpec& spec) {
  return std::string(AggregateFunctionName(spec.function)) + "(" +
         (spec.column.empty() ? std::string("*") : spec.column) + ")";
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// BoundAggregation

struct BoundAggregation::Impl {
  // One aggregate, resolved.
  struct Aggregate {
    const cp::HashAggregateKernel* kernel = nullptr;
    std::shared_ptr<cp::FunctionOptions> options;
    // The kernel's argument types: the argument column's (decoded) type, if any, then uint32
    // (the group ids). Owning TypeHolders: kernels may keep them.
    std::vector<arrow::TypeHolder> in_types;
    int argument = -1;  // input column index; -1 for count(*)
  };

  std::shared_ptr<arrow::Schema> input_schema;
  std::shared_ptr<arrow::Schema> output_schema;
  std::vector<std::string> keys;
  std::vector<AggregateSpec> aggregates;

  std::vector<int> key_columns;
  // Per key: the type the grouper sees (dictionaries decoded to their value type).
  std::vector<arrow::TypeHolder> grouping_types;
  std::vector<Aggregate> kernels;
  // Input columns read as a dictionary's values (keys and arguments of dictionary type).
  std::vector<bool> decode;
};

BoundAggregation::BoundAggregation(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
BoundAggregation::~BoundAggregation() = default;

const std::shared_ptr<arrow::Schema>& BoundAggregation::input_schema() const {
  return impl_->input_schema;
}
const std::shared_ptr<arrow::Schema>& BoundAggregation::output_schema() const {
  return impl_->output_schema;
}
const std::vector<std::string>& BoundAggregation::keys() const { return impl_->keys; }
const std::vector<AggregateSpec>& BoundAggregation::aggregates() const {
  return impl_->aggregates;
}

arrow::Result<std::shared_ptr<const BoundAggregation>> BoundAggregation::Bind(
    const std::shared_ptr<arrow::Schema>& input, std::vector<std::string> keys,
    std::vector<AggregateSpec> aggregates) {
  ARROW_RETURN_NOT_OK(InitializeArrow());
  if (input == nullptr) return arrow::Status::Invalid("aggregation: no input schema");
  if (aggregates.empty()) {
    return arrow::Status::Invalid("aggregation: no aggregate functions given");
  }
  auto impl = std::make_unique<Impl>();
  impl->input_schema = input;
  impl->decode.assign(input->num_fields(), false);

  arrow::FieldVector output_fields;
  std::set<std::string> output_names;
  for (const std::string& key : keys) {
    ARROW_ASSIGN_OR_RAISE(int index, FindColumn(*input, key, "aggregation key column"));
    if (!output_names.insert(key).second) {
      return arrow::Status::Invalid("aggregation key column '", key, "' is listed twice");
    }
    const auto& type = input->field(index)->type();
    impl->key_columns.push_back(index);
    impl->grouping_types.emplace_back(ValueTypeOf(type));
    impl->decode[index] = type->id() == arrow::Type::DICTIONARY;
    output_fields.push_back(input->field(index));
  }
  if (!keys.empty()) {
    cp::ExecContext probe(arrow::default_memory_pool());
    auto grouper = cp::Grouper::Make(impl->grouping_types, &probe);
    if (!grouper.ok()) {
      std::string types;
      for (int index : impl->key_columns) {
        types += (types.empty() ? "" : ", ") + input->field(index)->ToString();
      }
      return arrow::Status::TypeError("aggregation: cannot group by key columns (", types,
                                      "): ", grouper.status().message());
    }
  }

  cp::ExecContext exec_context(arrow::default_memory_pool());
  for (const AggregateSpec& spec : aggregates) {
    Impl::Aggregate aggregate;
    if (spec.column.empty()) {
      if (spec.function != AggregateFunction::kCount) {
        return arrow::Status::Invalid("aggregation: ", AggregateFunctionName(spec.function),
                                      " needs a column (only count may count rows)");
      }
    } else {
      ARROW_ASSIGN_OR_RAISE(aggregate.argument,
                            FindColumn(*input, spec.column,
                                       "column '" + spec.column + "' of " + Describe(spec) +
                                           ": argument column"));
      const auto& type = input->field(aggregate.argument)->type();
      impl->decode[aggregate.argument] = type->id() == arrow::Type::DICTIONARY;
      aggregate.in_types.emplace_back(ValueTypeOf(type));
    }
    aggregate.in_types.emplace_back(arrow::uint32());

    const std::string name = AggregateOutputName(spec);
    if (!output_names.insert(name).second) {
      return arrow::Status::Invalid("aggregation: output column '", name, "' of ",
                                    Describe(spec),
                                    " is already a key column or another aggregate's output "
                                    "(give it an alias)");
    }

    KernelChoice choice = ChooseKernel(spec);
    ARROW_ASSIGN_OR_RAISE(auto function,
                          exec_context.func_registry()->GetFunction(choice.function));
    if (function->kind() != cp::Function::HASH_AGGREGATE) {
      return arrow::Status::Invalid("aggregation: Arrow function ", choice.function,
                                    " is not a hash aggregate");
    }
    auto not_applicable = [&](const arrow::Status& why) {
      return arrow::Status::TypeError("aggregation: ", Describe(spec),
                                      " does not apply to column '", spec.column, "' of type ",
                                      aggregate.in_types[0].ToString(), " (", why.message(), ")");
    };
    auto kernel = function->DispatchExact(aggregate.in_types);
    if (!kernel.ok()) return not_applicable(kernel.status());
    aggregate.kernel = static_cast<const cp::HashAggregateKernel*>(*kernel);
    aggregate.options = std::move(choice.options);

    // The output type, resolved against an initialized state as Arrow's own callers do (some
    // kernels refuse a type only when initialized).
    cp::KernelContext kernel_context(&exec_context, aggregate.kernel);
    auto state = aggregate.kernel->init(
        &kernel_context,
        cp::KernelInitArgs{aggregate.kernel, aggregate.in_types, aggregate.options.get()});
    if (!state.ok()) return not_applicable(state.status());
    kernel_context.SetState(state->get());
    auto out_type =
        aggregate.kernel->signature->out_type().Resolve(&kernel_context, aggregate.in_types);
    if (!out_type.ok()) return not_applicable(out_type.status());
    output_fields.push_back(arrow::field(name, out_type->GetSharedPtr()));
    impl->kernels.push_back(std::move(aggregate));
  }

  impl->keys = std::move(keys);
  impl->aggregates = std::move(aggregates);
  impl->output_schema = arrow::schema(std::move(output_fields));
  return std::make_shared<const BoundAggregation>(std::move(impl));
}

// ---------------------------------------------------------------------------------------------
// GroupedAggregation

struct GroupedAggregation::State {
  State(std::shared_ptr<const BoundAggregation> bound_in, arrow::MemoryPool* pool)
      : bound(std::move(bound_in)),
        tracking_pool(new TrackingPool(pool)),
        exec_context(tracking_pool.get()) {}

  const BoundAggregation::Impl& impl() const { return bound->impl(); }
  bool global() const { return impl().key_columns.empty(); }

  // Fresh kernel states (and, for a global aggregation, its one group).
  arrow::Status InitStates() {
    states.clear();
    for (const auto& aggregate : impl().kernels) {
      cp::KernelContext context(&exec_context, aggregate.kernel);
      ARROW_ASSIGN_OR_RAISE(
          auto state,
          aggregate.kernel->init(&context, cp::KernelInitArgs{aggregate.kernel,
                                                              aggregate.in_types,
                                                              aggregate.options.get()}));
      states.push_back(std::move(state));
    }
    if (global()) {
      ARROW_RETURN_NOT_OK(ResizeStates(1));
    }
    return arrow::Status::OK();
  }

  arrow::Status ResizeStates(int64_t groups) {
    for (size_t i = 0; i < states.size(); ++i) {
      cp::KernelContext context(&exec_context, impl().kernels[i].kernel);
      context.SetState(states[i].get());
      ARROW_RETURN_NOT_OK(impl().kernels[i].kernel->resize(&context, groups));
    }
    return arrow::Status::OK();
  }

  int64_t num_groups() const {
    if (global()) return 1;
    return grouper->num_groups();
  }

  // `length` zero group ids (the global aggregation's one group), from a buffer kept for reuse.
  arrow::Result<arrow::Datum> ZeroGroupIds(int64_t length) {
    if (zeros == nullptr || zeros->length() < length) {
      ARROW_ASSIGN_OR_RAISE(auto buffer, arrow::AllocateBuffer(
                                             length * static_cast<int64_t>(sizeof(uint32_t)),
                                             tracking_pool.get()));
      std::memset(buffer->mutable_data(), 0, static_cast<size_t>(buffer->size()));
      zeros = std::make_shared<arrow::UInt32Array>(length, std::move(buffer));
    }
    return arrow::Datum(zeros->Slice(0, length));
  }

  // The key columns of `batch`, dictionaries decoded, for the grouper.
  arrow::Result<cp::ExecBatch> Keys(const arrow::RecordBatch& batch);
  // Adds the rows of `batch` to the groups `group_ids` (uint32, one per row, all valid).
  arrow::Status ConsumeWithIds(const arrow::RecordBatch& batch, const arrow::Datum& group_ids);

  // Column `index` of `batch`, dictionaries decoded to their values.
  arrow::Result<arrow::Datum> Column(const arrow::RecordBatch& batch, int index) {
    if (!impl().decode[index]) return arrow::Datum(batch.column(index));
    const auto& type = static_cast<const arrow::DictionaryType&>(*batch.column(index)->type());
    return cp::Cast(batch.column(index), type.value_type(), cp::CastOptions::Safe(),
                    &exec_context);
  }

  std::shared_ptr<const BoundAggregation> bound;
  std::unique_ptr<TrackingPool, TrackingPoolRelease> tracking_pool;
  cp::ExecContext exec_context;  // over tracking_pool; the grouper keeps a pointer to it
  // Declared after the pool: destroyed (freeing into it) before the owner releases it.
  std::unique_ptr<cp::Grouper> grouper;  // null for a global aggregation
  std::vector<std::unique_ptr<cp::KernelState>> states;
  std::shared_ptr<arrow::UInt32Array> zeros;
};

GroupedAggregation::GroupedAggregation(std::unique_ptr<State> state) : state_(std::move(state)) {}
GroupedAggregation::~GroupedAggregation() = default;

arrow::Result<std::unique_ptr<GroupedAggregation>> GroupedAggregation::Make(
    std::shared_ptr<const BoundAggregation> bound, arrow::MemoryPool* pool) {
  if (bound == nullptr) return arrow::Status::Invalid("GroupedAggregation: no aggregation");
  if (pool == nullptr) pool = arrow::default_memory_pool();
  auto state = std::make_unique<State>(std::move(bound), pool);
  if (!state->global()) {
    ARROW_ASSIGN_OR_RAISE(state->grouper,
                          cp::Grouper::Make(state->impl().grouping_types, &state->exec_context));
  }
  ARROW_RETURN_NOT_OK(state->InitStates());
  return std::unique_ptr<GroupedAggregation>(new GroupedAggregation(std::move(state)));
}

namespace {

arrow::Status CheckBatch(const BoundAggregation::Impl& impl, const arrow::RecordBatch& batch) {
  const arrow::Schema& expected = *impl.input_schema;
  if (batch.num_columns() != expected.num_fields()) {
    return arrow::Status::Invalid("aggregation: a batch of ", batch.num_columns(),
                                  " columns where the input has ", expected.num_fields(), " (",
                                  expected.ToString(), ")");
  }
  for (int i = 0; i < expected.num_fields(); ++i) {
    if (!batch.column(i)->type()->Equals(*expected.field(i)->type())) {
      return arrow::Status::TypeError("aggregation: column '", expected.field(i)->name(),
                                      "' of a batch is ", batch.column(i)->type()->ToString(),
                                      ", the input schema says ",
                                      expected.field(i)->type()->ToString());
    }
  }
  return arrow::Status::OK();
}

// NormalizeFloatKey for one float type.
template <typename ArrowType>
arrow::Result<std::shared_ptr<arrow::Array>> NormalizeFloats(
    const std::shared_ptr<arrow::Array>& key, arrow::MemoryPool* pool) {
  using CType = typename ArrowType::c_type;
  using ArrayType = arrow::NumericArray<ArrowType>;
  const auto& array = static_cast<const ArrayType&>(*key);
  const CType* values = array.raw_values();
  const int64_t length = array.length();
  const CType canonical_nan = std::numeric_limits<CType>::quiet_NaN();
  // Whether a value's bits differ from those of its normal form.
  auto differs = [&](CType v) {
    if (v == 0) return std::signbit(v);
    if (std::isnan(v)) return std::memcmp(&v, &canonical_nan, sizeof(CType)) != 0;
    return false;
  };
  bool any = false;
  for (int64_t i = 0; i < length && !any; ++i) any = differs(values[i]);
  if (!any) return key;
  ARROW_ASSIGN_OR_RAISE(auto buffer,
                        arrow::AllocateBuffer(length * int64_t{sizeof(CType)}, pool));
  auto* out = reinterpret_cast<CType*>(buffer->mutable_data());
  for (int64_t i = 0; i < length; ++i) {
    const CType v = values[i];
    out[i] = v == 0 ? CType{0} : (std::isnan(v) ? canonical_nan : v);
  }
  std::shared_ptr<arrow::Buffer> validity;
  if (array.null_count() > 0) {
    ARROW_ASSIGN_OR_RAISE(validity, arrow::internal::CopyBitmap(pool, array.null_bitmap_data(),
                                                                array.offset(), length));
  }
  return std::make_shared<ArrayType>(length, std::move(buffer), std::move(validity),
                                     array.null_count());
}

}  // namespace

arrow::Result<std::shared_ptr<arrow::Array>> NormalizeFloatKey(
    const std::shared_ptr<arrow::Array>& key, arrow::MemoryPool* pool) {
  switch (key->type_id()) {
    case arrow::Type::FLOAT:
      return NormalizeFloats<arrow::FloatType>(key, pool);
    case arrow::Type::DOUBLE:
      return NormalizeFloats<arrow::DoubleType>(key, pool);
    default:
      return key;
  }
}

arrow::Result<cp::ExecBatch> GroupedAggregation::State::Keys(const arrow::RecordBatch& batch) {
  std::vector<arrow::Datum> keys;
  keys.reserve(impl().key_columns.size());
  for (int index : impl().key_columns) {
    ARROW_ASSIGN_OR_RAISE(arrow::Datum key, Column(batch, index));
    ARROW_ASSIGN_OR_RAISE(auto normal, NormalizeFloatKey(key.make_array(), tracking_pool.get()));
    keys.emplace_back(std::move(normal));
  }
  return cp::ExecBatch(std::move(keys), batch.num_rows());
}

arrow::Status GroupedAggregation::Consume(const arrow::RecordBatch& batch) {
  State& s = *state_;
  ARROW_RETURN_NOT_OK(CheckBatch(s.impl(), batch));
  const int64_t length = batch.num_rows();
  if (length == 0) return arrow::Status::OK();
  arrow::Datum group_ids;
  if (s.global()) {
    ARROW_ASSIGN_OR_RAISE(group_ids, s.ZeroGroupIds(length));
  } else {
    ARROW_ASSIGN_OR_RAISE(cp::ExecBatch keys, s.Keys(batch));
    ARROW_ASSIGN_OR_RAISE(group_ids, s.grouper->Consume(cp::ExecSpan(keys)));
  }
  return s.ConsumeWithIds(batch, group_ids);
}

arrow::Result<std::shared_ptr<arrow::RecordBatch>> GroupedAggregation::ConsumeKnown(
    const std::shared_ptr<arrow::RecordBatch>& batch) {
  State& s = *state_;
  ARROW_RETURN_NOT_OK(CheckBatch(s.impl(), *batch));
  if (s.global() || batch->num_rows() == 0) {
    ARROW_RETURN_NOT_OK(Consume(*batch));
    return batch->Slice(0, 0);
  }
  ARROW_ASSIGN_OR_RAISE(cp::ExecBatch keys, s.Keys(*batch));
  ARROW_ASSIGN_OR_RAISE(arrow::Datum ids, s.grouper->Lookup(cp::ExecSpan(keys)));
  const int64_t unknown = ids.array()->GetNullCount();
  if (unknown == 0) {
    ARROW_RETURN_NOT_OK(s.ConsumeWithIds(*batch, ids));
    return batch->Slice(0, 0);
  }
  if (unknown == batch->num_rows()) return batch;
  ARROW_ASSIGN_OR_RAISE(arrow::Datum known_mask,
                        cp::CallFunction("is_valid", {ids}, &s.exec_context));
  ARROW_ASSIGN_OR_RAISE(arrow::Datum known_rows,
                        cp::Filter(batch, known_mask, cp::FilterOptions::Defaults(),
                                   &s.exec_context));
  ARROW_ASSIGN_OR_RAISE(arrow::Datum known_ids,
                        cp::Filter(ids, known_mask, cp::FilterOptions::Defaults(),
                                   &s.exec_context));
  ARROW_RETURN_NOT_OK(s.ConsumeWithIds(*known_rows.record_batch(), known_ids));
  ARROW_ASSIGN_OR_RAISE(arrow::Datum unknown_mask,
                        cp::CallFunction("is_null", {ids}, &s.exec_context));
  ARROW_ASSIGN_OR_RAISE(arrow::Datum unknown_rows,
                        cp::Filter(batch, unknown_mask, cp::FilterOptions::Defaults(),
                                   &s.exec_context));
  return unknown_rows.record_batch();
}

arrow::Status GroupedAggregation::State::ConsumeWithIds(const arrow::RecordBatch& batch,
                                                        const arrow::Datum& group_ids) {
  State& s = *this;
  const BoundAggregation::Impl& impl = s.impl();
  const int64_t length = batch.num_rows();
  const int64_t groups = s.num_groups();
  for (size_t i = 0; i < impl.kernels.size(); ++i) {
    const auto& aggregate = impl.kernels[i];
    std::vector<arrow::Datum> values;
    if (aggregate.argument >= 0) {
      ARROW_ASSIGN_OR_RAISE(auto argument, s.Column(batch, aggregate.argument));
      values.push_back(std::move(argument));
    }
    values.push_back(group_ids);
    cp::ExecBatch kernel_batch(std::move(values), length);
    cp::KernelContext context(&s.exec_context, aggregate.kernel);
    context.SetState(s.states[i].get());
    ARROW_RETURN_NOT_OK(aggregate.kernel->resize(&context, groups));
    ARROW_RETURN_NOT_OK(aggregate.kernel->consume(&context, cp::ExecSpan(kernel_batch)));
  }
  return arrow::Status::OK();
}

arrow::Status GroupedAggregation::Merge(GroupedAggregation&& other) {
  State& s = *state_;
  State& o = *other.state_;
  if (&s == &o) return arrow::Status::Invalid("aggregation: Merge of a state into itself");
  if (s.bound != o.bound) {
    return arrow::Status::Invalid(
        "aggregation: Merge of states bound to different aggregations");
  }
  const BoundAggregation::Impl& impl = s.impl();

  // Where each of the other's groups lands here: the other's keys consumed by this grouper
  // (new keys get new ids after this one's, in the other's first-seen order).
  arrow::Datum transposition;
  if (s.global()) {
    ARROW_ASSIGN_OR_RAISE(transposition, s.ZeroGroupIds(1));
  } else {
    if (o.grouper->num_groups() == 0) return arrow::Status::OK();
    ARROW_ASSIGN_OR_RAISE(cp::ExecBatch other_keys, o.grouper->GetUniques());
    ARROW_ASSIGN_OR_RAISE(transposition, s.grouper->Consume(cp::ExecSpan(other_keys)));
  }

  const int64_t groups = s.num_groups();
  for (size_t i = 0; i < impl.kernels.size(); ++i) {
    const auto& aggregate = impl.kernels[i];
    cp::KernelContext context(&s.exec_context, aggregate.kernel);
    context.SetState(s.states[i].get());
    ARROW_RETURN_NOT_OK(aggregate.kernel->resize(&context, groups));
    ARROW_RETURN_NOT_OK(
        aggregate.kernel->merge(&context, std::move(*o.states[i]), *transposition.array()));
  }

  // The other is left empty, ready to consume again.
  if (!o.global()) ARROW_RETURN_NOT_OK(o.grouper->Reset());
  return o.InitStates();
}

arrow::Result<std::shared_ptr<arrow::RecordBatch>> GroupedAggregation::Finish() {
  State& s = *state_;
  const BoundAggregation::Impl& impl = s.impl();
  const int64_t groups = s.num_groups();

  std::shared_ptr<arrow::RecordBatch> result;
  if (groups == 0) {
    ARROW_ASSIGN_OR_RAISE(result, arrow::RecordBatch::MakeEmpty(impl.output_schema,
                                                                s.tracking_pool.get()));
  } else {
    arrow::ArrayVector columns;
    columns.reserve(impl.output_schema->num_fields());
    if (!s.global()) {
      ARROW_ASSIGN_OR_RAISE(cp::ExecBatch uniques, s.grouper->GetUniques());
      for (size_t k = 0; k < impl.key_columns.size(); ++k) {
        arrow::Datum key = std::move(uniques.values[k]);
        const auto& type = impl.input_schema->field(impl.key_columns[k])->type();
        if (impl.decode[impl.key_columns[k]]) {
          // Back to the input's dictionary type (one dictionary for the whole result).
          ARROW_ASSIGN_OR_RAISE(key, cp::Cast(key, type, cp::CastOptions::Safe(),
                                              &s.exec_context));
        }
        columns.push_back(key.make_array());
      }
    }
    for (size_t i = 0; i < impl.kernels.size(); ++i) {
      const auto& aggregate = impl.kernels[i];
      cp::KernelContext context(&s.exec_context, aggregate.kernel);
      context.SetState(s.states[i].get());
      ARROW_RETURN_NOT_OK(aggregate.kernel->resize(&context, groups));
      arrow::Datum out;
      ARROW_RETURN_NOT_OK(aggregate.kernel->finalize(&context, &out));
      columns.push_back(out.make_array());
    }
    result = arrow::RecordBatch::Make(impl.output_schema, groups, std::move(columns));
  }

  if (!s.global()) ARROW_RETURN_NOT_OK(s.grouper->Reset());
  ARROW_RETURN_NOT_OK(s.InitStates());
  return result;
}

int64_t GroupedAggregation::num_groups() const {
  const State& s = *state_;
  if (s.global()) return 1;
  return s.grouper->num_groups();
}

int64_t GroupedAggregation::memory_bytes() const {
  return state_->tracking_pool->bytes_allocated();
}

}  // namespace sabot
