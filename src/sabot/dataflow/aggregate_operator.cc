#include "sabot/dataflow/aggregate_operator.h"

#include <algorithm>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include <arrow/array.h>
#include <arrow/array/concatenate.h>
#include <arrow/builder.h>
#include <arrow/chunked_array.h>
#include <arrow/compute/api_scalar.h>
#include <arrow/compute/api_vector.h>
#include <arrow/compute/cast.h>
#include <arrow/compute/exec.h>
#include <arrow/compute/row/grouper.h>
#include <arrow/type.h>

#include "sabot/dataflow/grouped_aggregation.h"
#include "sabot/dataflow/state_spill.h"
#include "sabot/partition/key_hash.h"

namespace sabot {

namespace cp = arrow::compute;

namespace {

// Result batches of a bounded aggregate are emitted in slices of at most this many rows.
constexpr int64_t kMaxOutputRows = 64 * 1024;

std::string Describe(const AggregateSpec& spec) {
  return std::string(AggregateFunctionName(spec.function)) + "(" +
         (spec.column.empty() ? std::string("*") : spec.column) + ")";
}

class AggregateOperatorBase : public Operator {
 public:
  int64_t rows_in() const override { return rows_in_; }
  int64_t rows_out() const override { return rows_out_; }

 protected:
  arrow::Status EmitCounted(const std::shared_ptr<arrow::RecordBatch>& batch,
                            OperatorOutput* out) {
    rows_out_ += batch->num_rows();
    return out->Emit(batch);
  }

  int64_t rows_in_ = 0;
  int64_t rows_out_ = 0;
};

// ---------------------------------------------------------------------------------------------
// Bounded input: one row per key at end of input, spilling when the state outgrows its budget.

// A bounded aggregation under a memory budget (grace hash aggregation). While its state is
// within the budget, every row goes into it. Past the budget the state stops taking new keys:
// rows of keys it has keep being aggregated (ConsumeKnown), rows of other keys are written to
// kSpillPartitions IPC files by key hash (SpillPartitions, state_spill.h). At the end the
// state's result is emitted and each partition is aggregated in turn by a GraceAggregation one
// level down (its keys are disjoint from the state's and from the other partitions'), so every
// key's rows meet in one state, in their arrival order.
class GraceAggregation {
 public:
  GraceAggregation(std::shared_ptr<const BoundAggregation> bound, arrow::MemoryPool* pool,
                   int64_t budget, SpillDirectory* spill, int level, std::string prefix)
      : bound_(std::move(bound)),
        pool_(pool),
        budget_(budget),
        spill_(spill),
        level_(level),
        prefix_(std::move(prefix)) {}

  arrow::Status Init() {
    ARROW_ASSIGN_OR_RAISE(state_, GroupedAggregation::Make(bound_, pool_));
    // The empty state's fixed buffers (the grouper's scratch) are not what the budget limits.
    baseline_ = state_->memory_bytes();
    return arrow::Status::OK();
  }

  arrow::Status Consume(const std::shared_ptr<arrow::RecordBatch>& batch) {
    if (spilled_ == nullptr && budget_ > 0 && level_ < kMaxSpillLevel &&
        !bound_->keys().empty() && state_->memory_bytes() - baseline_ > budget_) {
      ARROW_RETURN_NOT_OK(StartSpilling());
    }
    if (spilled_ == nullptr) return state_->Consume(*batch);
    ARROW_ASSIGN_OR_RAISE(auto rest, state_->ConsumeKnown(batch));
    if (rest->num_rows() == 0) return arrow::Status::OK();
    return Spill(rest);
  }

  // Emits every group's result through `emit`, then aggregates the spilled partitions.
  arrow::Status Finish(const std::function<arrow::Status(std::shared_ptr<arrow::RecordBatch>)>&
                           emit) {
    ARROW_ASSIGN_OR_RAISE(auto result, state_->Finish());
    state_.reset();
    for (int64_t offset = 0; offset < result->num_rows(); offset += kMaxOutputRows) {
      ARROW_RETURN_NOT_OK(emit(result->Slice(offset, kMaxOutputRows)));
    }
    result.reset();
    if (spilled_ == nullptr) return arrow::Status::OK();
    ARROW_RETURN_NOT_OK(spilled_->Close());
    for (int32_t p = 0; p < kSpillPartitions; ++p) {
      if (!spilled_->has(p)) continue;
      GraceAggregation partition(bound_, pool_, budget_, spill_, level_ + 1,
                                 prefix_ + "-" + std::to_string(p));
      ARROW_RETURN_NOT_OK(partition.Init());
      ARROW_RETURN_NOT_OK(spilled_->Read(p, [&](std::shared_ptr<arrow::RecordBatch> batch) {
        return partition.Consume(batch);
      }));
      spilled_->Remove(p);
      ARROW_RETURN_NOT_OK(partition.Finish(emit));
    }
    spilled_.reset();
    return arrow::Status::OK();
  }

 private:
  arrow::Status StartSpilling() {
    ARROW_ASSIGN_OR_RAISE(hasher_, KeyHasher::Make(bound_->keys(), *bound_->input_schema()));
    spilled_ = std::make_unique<SpillPartitions>(spill_, prefix_, level_, pool_);
    return arrow::Status::OK();
  }

  arrow::Status Spill(const std::shared_ptr<arrow::RecordBatch>& rows) {
    hashes_.resize(static_cast<size_t>(rows->num_rows()));
    ARROW_RETURN_NOT_OK(hasher_->Hash(*rows, hashes_.data()));
    return spilled_->Append(rows, hashes_.data());
  }

  std::shared_ptr<const BoundAggregation> bound_;
  arrow::MemoryPool* pool_;
  int64_t budget_;
  SpillDirectory* spill_;
  int level_;
  std::string prefix_;  // file names of this level's partitions start with it
  std::unique_ptr<GroupedAggregation> state_;
  int64_t baseline_ = 0;
  std::unique_ptr<KeyHasher> hasher_;
  std::vector<uint64_t> hashes_;
  std::unique_ptr<SpillPartitions> spilled_;  // null until spilling
};

class BoundedAggregateOperator : public AggregateOperatorBase {
 public:
  BoundedAggregateOperator(std::shared_ptr<const BoundAggregation> bound,
                           const TaskContext& task)
      : spill_(task.spill_directory, SpillDirectoryName("aggregate", task),
               "aggregate '" + (task.spec != nullptr ? task.spec->name : std::string()) + "'"),
        aggregation_(std::make_unique<GraceAggregation>(std::move(bound), task.pool,
                                                        task.state_budget_bytes, &spill_, 0,
                                                        "level")) {}

  arrow::Status Init() { return aggregation_->Init(); }

  arrow::Status Process(int32_t, const std::shared_ptr<arrow::RecordBatch>& batch,
                        OperatorOutput*) override {
    rows_in_ += batch->num_rows();
    return aggregation_->Consume(batch);
  }

  arrow::Status Finish(OperatorOutput* out) override {
    ARROW_RETURN_NOT_OK(aggregation_->Finish(
        [&](std::shared_ptr<arrow::RecordBatch> batch) { return EmitCounted(batch, out); }));
    aggregation_.reset();
    return arrow::Status::OK();
  }

  void Abort() override { aggregation_.reset(); }

  int64_t state_spilled_bytes() const override { return spill_.spilled_bytes(); }

 private:
  SpillDirectory spill_;  // outlives aggregation_
  std::unique_ptr<GraceAggregation> aggregation_;
};

// ---------------------------------------------------------------------------------------------
// Unbounded input: a changelog.

// How the running partial result of one partial column absorbs a batch's partial result.
enum class Combine { kAdd, kMin, kMax, kKeepOld, kTakeNew };

// One partial column of the changelog state.
struct PartialColumn {
  Combine combine;
  std::shared_ptr<arrow::DataType> type;
};

// One user aggregate: its partial column(s) (a mean has two: sum, count) and output type.
struct ChangelogAggregate {
  std::vector<int> partials;
  bool mean = false;
  std::shared_ptr<arrow::DataType> output_type;
};

// What every task of a changelog aggregate shares. Immutable.
struct ChangelogPlan {
  std::shared_ptr<const BoundAggregation> partial;  // keys + partial columns, per batch
  std::vector<PartialColumn> partial_columns;
  std::vector<ChangelogAggregate> aggregates;
  size_t num_keys = 0;
  std::vector<arrow::TypeHolder> grouping_types;  // keys with dictionaries decoded
  std::shared_ptr<arrow::Schema> output_schema;
};

arrow::Result<arrow::Datum> DecodeDictionary(const arrow::Datum& values, cp::ExecContext* ctx) {
  if (values.type()->id() != arrow::Type::DICTIONARY) return values;
  const auto& type = static_cast<const arrow::DictionaryType&>(*values.type());
  return cp::Cast(values, type.value_type(), cp::CastOptions::Safe(), ctx);
}

arrow::Result<std::shared_ptr<arrow::Array>> ToArray(const arrow::Datum& datum,
                                                     arrow::MemoryPool* pool) {
  if (datum.is_array()) return datum.make_array();
  if (datum.is_chunked_array()) {
    const auto& chunks = datum.chunked_array()->chunks();
    if (chunks.size() == 1) return chunks[0];
    if (chunks.empty()) return arrow::MakeEmptyArray(datum.type(), pool);
    return arrow::Concatenate(chunks, pool);
  }
  return arrow::Status::Invalid("aggregate: expected an array, got ", datum.ToString());
}

// The running value `old` (null where there was none) combined with a batch's `delta`.
arrow::Result<std::shared_ptr<arrow::Array>> CombinePartial(
    const PartialColumn& column, const std::shared_ptr<arrow::Array>& old,
    const std::shared_ptr<arrow::Array>& delta, cp::ExecContext* ctx) {
  arrow::Datum result;
  switch (column.combine) {
    case Combine::kAdd: {
      // Both valid: the sum; otherwise whichever is valid (a group whose values were all null
      // so far has a null sum).
      ARROW_ASSIGN_OR_RAISE(auto sum, cp::CallFunction("add", {old, delta}, ctx));
      if (!sum.type()->Equals(*column.type)) {
        ARROW_ASSIGN_OR_RAISE(sum, cp::Cast(sum, column.type, cp::CastOptions::Safe(), ctx));
      }
      ARROW_ASSIGN_OR_RAISE(result, cp::CallFunction("coalesce", {sum, old, delta}, ctx));
      break;
    }
    case Combine::kMin:
    case Combine::kMax: {
      cp::ElementWiseAggregateOptions options(/*skip_nulls=*/true);
      ARROW_ASSIGN_OR_RAISE(
          result,
          cp::CallFunction(column.combine == Combine::kMin ? "min_element_wise"
                                                           : "max_element_wise",
                           {old, delta}, &options, ctx));
      break;
    }
    case Combine::kKeepOld: {
      ARROW_ASSIGN_OR_RAISE(result, cp::CallFunction("coalesce", {old, delta}, ctx));
      break;
    }
    case Combine::kTakeNew: {
      ARROW_ASSIGN_OR_RAISE(result, cp::CallFunction("coalesce", {delta, old}, ctx));
      break;
    }
  }
  return ToArray(result, ctx->memory_pool());
}

// The user-facing value of `aggregate` from its partial columns.
arrow::Result<std::shared_ptr<arrow::Array>> FinalValue(const ChangelogAggregate& aggregate,
                                                         const arrow::ArrayVector& partials,
                                                         cp::ExecContext* ctx) {
  if (!aggregate.mean) return partials[aggregate.partials[0]];
  ARROW_ASSIGN_OR_RAISE(auto sum, cp::Cast(partials[aggregate.partials[0]], arrow::float64(),
                                           cp::CastOptions::Safe(), ctx));
  ARROW_ASSIGN_OR_RAISE(auto count, cp::Cast(partials[aggregate.partials[1]], arrow::float64(),
                                             cp::CastOptions::Safe(), ctx));
  ARROW_ASSIGN_OR_RAISE(auto mean, cp::CallFunction("divide", {sum, count}, ctx));
  return ToArray(mean, ctx->memory_pool());
}

arrow::Result<std::shared_ptr<const ChangelogPlan>> MakeChangelogPlan(
    const std::shared_ptr<arrow::Schema>& input, const std::vector<std::string>& keys,
    const std::vector<AggregateSpec>& specs, const BoundAggregation& final_bound) {
  auto plan = std::make_shared<ChangelogPlan>();
  std::vector<AggregateSpec> partial_specs;
  std::vector<Combine> combines;
  auto add_partial = [&](AggregateFunction function, const std::string& column,
                         Combine combine) {
    partial_specs.push_back(
        {function, column, "__sabot_partial_" + std::to_string(partial_specs.size())});
    combines.push_back(combine);
    return static_cast<int>(partial_specs.size() - 1);
  };
  const auto& output_fields = final_bound.output_schema()->fields();
  for (size_t a = 0; a < specs.size(); ++a) {
    const AggregateSpec& spec = specs[a];
    ChangelogAggregate aggregate;
    aggregate.output_type = output_fields[keys.size() + a]->type();
    switch (spec.function) {
      case AggregateFunction::kCount:
      case AggregateFunction::kSum:
        aggregate.partials.push_back(add_partial(spec.function, spec.column, Combine::kAdd));
        break;
      case AggregateFunction::kMin:
        aggregate.partials.push_back(add_partial(spec.function, spec.column, Combine::kMin));
        break;
      case AggregateFunction::kMax:
        aggregate.partials.push_back(add_partial(spec.function, spec.column, Combine::kMax));
        break;
      case AggregateFunction::kFirst:
        aggregate.partials.push_back(add_partial(spec.function, spec.column, Combine::kKeepOld));
        break;
      case AggregateFunction::kLast:
        aggregate.partials.push_back(add_partial(spec.function, spec.column, Combine::kTakeNew));
        break;
      case AggregateFunction::kMean:
        if (aggregate.output_type->id() != arrow::Type::DOUBLE) {
          return arrow::Status::NotImplemented(
              Describe(spec), " (of type ", aggregate.output_type->ToString(),
              ") cannot be maintained over an unbounded input without a window; put a window "
              "before the aggregate, or cast the column to float64");
        }
        aggregate.mean = true;
        aggregate.partials.push_back(
            add_partial(AggregateFunction::kSum, spec.column, Combine::kAdd));
        aggregate.partials.push_back(
            add_partial(AggregateFunction::kCount, spec.column, Combine::kAdd));
        break;
      case AggregateFunction::kCountDistinct:
      case AggregateFunction::kApproxMedian:
        return arrow::Status::NotImplemented(
            Describe(spec),
            " cannot be maintained incrementally over an unbounded input: put a window before "
            "the aggregate (key_by -> window -> aggregate), or read a bounded input");
    }
    plan->aggregates.push_back(std::move(aggregate));
  }
  ARROW_ASSIGN_OR_RAISE(plan->partial, BoundAggregation::Bind(input, keys, partial_specs));
  const auto& partial_fields = plan->partial->output_schema()->fields();
  cp::ExecContext ctx;
  for (size_t p = 0; p < partial_specs.size(); ++p) {
    PartialColumn column{combines[p], partial_fields[keys.size() + p]->type()};
    // The element-wise kernels must exist for the type: try them on empty arrays.
    ARROW_ASSIGN_OR_RAISE(auto empty, arrow::MakeEmptyArray(column.type));
    auto combined = CombinePartial(column, empty, empty, &ctx);
    if (!combined.ok()) {
      for (size_t a = 0; a < specs.size(); ++a) {
        const auto& partials = plan->aggregates[a].partials;
        if (std::find(partials.begin(), partials.end(), static_cast<int>(p)) != partials.end()) {
          return arrow::Status::NotImplemented(
              Describe(specs[a]), " of type ", column.type->ToString(),
              " cannot be maintained over an unbounded input without a window (",
              combined.status().message(), "); put a window before the aggregate");
        }
      }
      return combined.status();
    }
    plan->partial_columns.push_back(std::move(column));
  }
  plan->num_keys = keys.size();
  for (size_t k = 0; k < keys.size(); ++k) {
    const auto& type = partial_fields[k]->type();
    plan->grouping_types.emplace_back(
        type->id() == arrow::Type::DICTIONARY
            ? static_cast<const arrow::DictionaryType&>(*type).value_type()
            : type);
  }
  arrow::FieldVector fields = final_bound.output_schema()->fields();
  fields.push_back(arrow::field(kChangelogColumn, arrow::utf8(), /*nullable=*/false));
  plan->output_schema = arrow::schema(std::move(fields));
  return plan;
}

// The changelog state of one task: a dense group id per key (Arrow's Grouper), and the partial
// results of every group, stored as the batches in which they were last updated (`chunks_`)
// with each group's row among them (`location_`). A batch's update appends one chunk with the
// touched groups' new partials; when the chunks hold more than twice the live rows they are
// compacted into one. Lookups and updates thus cost the rows a batch touches (and the chunks
// they are in), amortized.
class ChangelogAggregateOperator : public AggregateOperatorBase {
 public:
  ChangelogAggregateOperator(std::shared_ptr<const ChangelogPlan> plan, arrow::MemoryPool* pool,
                             std::unique_ptr<GroupedAggregation> partial)
      : plan_(std::move(plan)), ctx_(pool), partial_(std::move(partial)) {}

  arrow::Status Init() {
    if (plan_->num_keys > 0) {
      ARROW_ASSIGN_OR_RAISE(grouper_, cp::Grouper::Make(plan_->grouping_types, &ctx_));
    }
    return arrow::Status::OK();
  }

  arrow::Status Process(int32_t, const std::shared_ptr<arrow::RecordBatch>& batch,
                        OperatorOutput* out) override {
    if (batch->num_rows() == 0) return arrow::Status::OK();
    rows_in_ += batch->num_rows();
    ARROW_RETURN_NOT_OK(partial_->Consume(*batch));
    ARROW_ASSIGN_OR_RAISE(auto delta, partial_->Finish());
    const int64_t n = delta->num_rows();
    const size_t num_keys = plan_->num_keys;

    // Group ids of the touched keys; those below `known` had a result before this batch.
    const uint32_t known = num_groups_;
    std::vector<uint32_t> ids(static_cast<size_t>(n), 0);
    if (num_keys > 0) {
      std::vector<arrow::Datum> keys;
      for (size_t k = 0; k < num_keys; ++k) {
        ARROW_ASSIGN_OR_RAISE(auto key,
                              DecodeDictionary(delta->column(static_cast<int>(k)), &ctx_));
        keys.push_back(std::move(key));
      }
      cp::ExecBatch key_batch(std::move(keys), n);
      ARROW_ASSIGN_OR_RAISE(arrow::Datum group_ids, grouper_->Consume(cp::ExecSpan(key_batch)));
      auto id_array = std::static_pointer_cast<arrow::UInt32Array>(group_ids.make_array());
      for (int64_t i = 0; i < n; ++i) ids[i] = id_array->Value(i);
      num_groups_ = grouper_->num_groups();
    } else {
      num_groups_ = 1;
    }

    // The previous partials, row-aligned with `delta` (null for new groups), gathered from
    // the chunks that hold them: per chunk, the rows to take (a binary search finds a row's
    // chunk), then one take that puts them in `delta`'s order. Costs the touched rows, not the
    // stored ones.
    arrow::Int64Builder existing_builder(ctx_.memory_pool());
    std::vector<std::vector<int64_t>> rows_in_chunk(chunks_.size());
    std::vector<std::pair<size_t, int64_t>> place(static_cast<size_t>(n), {0, -1});
    for (int64_t i = 0; i < n; ++i) {
      if (ids[i] >= known) continue;
      const int64_t row = location_[ids[i]];
      const size_t chunk = static_cast<size_t>(
          std::upper_bound(chunk_starts_.begin(), chunk_starts_.end(), row) -
          chunk_starts_.begin() - 1);
      place[i] = {chunk, static_cast<int64_t>(rows_in_chunk[chunk].size())};
      rows_in_chunk[chunk].push_back(row - chunk_starts_[chunk]);
      ARROW_RETURN_NOT_OK(existing_builder.Append(i));
    }
    ARROW_ASSIGN_OR_RAISE(auto existing, existing_builder.Finish());
    std::vector<size_t> touched_chunks;
    std::vector<std::shared_ptr<arrow::Array>> chunk_rows(chunks_.size());
    std::vector<int64_t> chunk_base(chunks_.size(), 0);
    int64_t gathered = 0;
    for (size_t k = 0; k < chunks_.size(); ++k) {
      if (rows_in_chunk[k].empty()) continue;
      touched_chunks.push_back(k);
      arrow::Int64Builder rows(ctx_.memory_pool());
      ARROW_RETURN_NOT_OK(rows.AppendValues(rows_in_chunk[k]));
      ARROW_ASSIGN_OR_RAISE(chunk_rows[k], rows.Finish());
      chunk_base[k] = gathered;
      gathered += static_cast<int64_t>(rows_in_chunk[k].size());
    }
    arrow::Int64Builder order_builder(ctx_.memory_pool());
    ARROW_RETURN_NOT_OK(order_builder.Reserve(n));
    for (int64_t i = 0; i < n; ++i) {
      if (place[i].second < 0) {
        order_builder.UnsafeAppendNull();
      } else {
        order_builder.UnsafeAppend(chunk_base[place[i].first] + place[i].second);
      }
    }
    ARROW_ASSIGN_OR_RAISE(auto order, order_builder.Finish());
    const size_t num_partials = plan_->partial_columns.size();
    arrow::ArrayVector old_partials(num_partials);
    arrow::ArrayVector new_partials(num_partials);
    for (size_t p = 0; p < num_partials; ++p) {
      const auto& delta_column = delta->column(static_cast<int>(num_keys + p));
      if (touched_chunks.empty()) {
        ARROW_ASSIGN_OR_RAISE(old_partials[p],
                              arrow::MakeArrayOfNull(delta_column->type(), n, ctx_.memory_pool()));
      } else {
        arrow::ArrayVector pieces;
        for (size_t k : touched_chunks) {
          ARROW_ASSIGN_OR_RAISE(auto piece, cp::Take(chunks_[k][p], chunk_rows[k],
                                                     cp::TakeOptions::Defaults(), &ctx_));
          pieces.push_back(piece.make_array());
        }
        std::shared_ptr<arrow::Array> all = pieces[0];
        if (pieces.size() > 1) {
          ARROW_ASSIGN_OR_RAISE(all, arrow::Concatenate(pieces, ctx_.memory_pool()));
        }
        ARROW_ASSIGN_OR_RAISE(auto taken,
                              cp::Take(all, order, cp::TakeOptions::Defaults(), &ctx_));
        old_partials[p] = taken.make_array();
      }
      ARROW_ASSIGN_OR_RAISE(new_partials[p], CombinePartial(plan_->partial_columns[p],
                                                            old_partials[p], delta_column, &ctx_));
    }

    // The changelog: "-U" rows (previous results of existing keys), then "+U"/"+I" rows.
    const int64_t retracts = existing->length();
    arrow::ArrayVector columns;
    for (size_t k = 0; k < num_keys; ++k) {
      const auto& key = delta->column(static_cast<int>(k));
      ARROW_ASSIGN_OR_RAISE(auto retracted, cp::Take(key, existing, cp::TakeOptions::Defaults(),
                                                     &ctx_));
      ARROW_ASSIGN_OR_RAISE(auto both,
                            arrow::Concatenate({retracted.make_array(), key}, ctx_.memory_pool()));
      columns.push_back(std::move(both));
    }
    for (const auto& aggregate : plan_->aggregates) {
      ARROW_ASSIGN_OR_RAISE(auto before, FinalValue(aggregate, old_partials, &ctx_));
      ARROW_ASSIGN_OR_RAISE(auto retracted, cp::Take(before, existing,
                                                     cp::TakeOptions::Defaults(), &ctx_));
      ARROW_ASSIGN_OR_RAISE(auto after, FinalValue(aggregate, new_partials, &ctx_));
      ARROW_ASSIGN_OR_RAISE(auto both, arrow::Concatenate({retracted.make_array(), after},
                                                          ctx_.memory_pool()));
      columns.push_back(std::move(both));
    }
    arrow::StringBuilder op(ctx_.memory_pool());
    for (int64_t i = 0; i < retracts; ++i) ARROW_RETURN_NOT_OK(op.Append(kChangelogRetract));
    for (int64_t i = 0; i < n; ++i) {
      ARROW_RETURN_NOT_OK(op.Append(ids[i] < known ? kChangelogUpdate : kChangelogInsert));
    }
    ARROW_ASSIGN_OR_RAISE(auto op_column, op.Finish());
    columns.push_back(std::move(op_column));
    ARROW_RETURN_NOT_OK(EmitCounted(
        arrow::RecordBatch::Make(plan_->output_schema, retracts + n, std::move(columns)), out));

    return Store(ids, std::move(new_partials));
  }

  void Abort() override {
    chunks_.clear();
    chunk_starts_.clear();
    location_.clear();
  }

 private:
  // Records `partials` (row-aligned with `ids`) as the groups' current partial results.
  arrow::Status Store(const std::vector<uint32_t>& ids, arrow::ArrayVector partials) {
    location_.resize(num_groups_, -1);
    for (size_t i = 0; i < ids.size(); ++i) {
      location_[ids[i]] = stored_rows_ + static_cast<int64_t>(i);
    }
    chunk_starts_.push_back(stored_rows_);
    stored_rows_ += static_cast<int64_t>(ids.size());
    chunks_.push_back(std::move(partials));
    if (stored_rows_ <= 2 * static_cast<int64_t>(num_groups_) + 1024 || chunks_.size() == 1) {
      return arrow::Status::OK();
    }
    // Compaction: every group's current row, in group id order, as one chunk.
    arrow::Int64Builder rows(ctx_.memory_pool());
    ARROW_RETURN_NOT_OK(rows.AppendValues(location_));
    ARROW_ASSIGN_OR_RAISE(auto all, rows.Finish());
    arrow::ArrayVector compacted(plan_->partial_columns.size());
    for (size_t p = 0; p < compacted.size(); ++p) {
      arrow::ArrayVector column_chunks;
      for (const auto& chunk : chunks_) column_chunks.push_back(chunk[p]);
      auto stored = std::make_shared<arrow::ChunkedArray>(std::move(column_chunks),
                                                          plan_->partial_columns[p].type);
      ARROW_ASSIGN_OR_RAISE(auto taken,
                            cp::Take(stored, all, cp::TakeOptions::Defaults(), &ctx_));
      ARROW_ASSIGN_OR_RAISE(compacted[p], ToArray(taken, ctx_.memory_pool()));
    }
    chunks_.clear();
    chunks_.push_back(std::move(compacted));
    chunk_starts_.assign(1, 0);
    for (uint32_t g = 0; g < num_groups_; ++g) location_[g] = g;
    stored_rows_ = num_groups_;
    return arrow::Status::OK();
  }

  std::shared_ptr<const ChangelogPlan> plan_;
  cp::ExecContext ctx_;
  std::unique_ptr<GroupedAggregation> partial_;  // one batch's partial results
  std::unique_ptr<cp::Grouper> grouper_;         // key -> group id; null without keys
  uint32_t num_groups_ = 0;
  std::vector<arrow::ArrayVector> chunks_;  // per chunk, one array per partial column
  std::vector<int64_t> chunk_starts_;       // per chunk, its first row in the concatenation
  std::vector<int64_t> location_;           // group id -> row in the chunks, concatenated
  int64_t stored_rows_ = 0;
};

}  // namespace

arrow::Result<BoundOperator> BindAggregateOperator(const OperatorSpec& spec,
                                                   const AggregateParams& params,
                                                   const std::shared_ptr<arrow::Schema>& input,
                                                   const OperatorPlanContext& context) {
  if (context.input_window != nullptr) {
    return arrow::Status::Invalid("an aggregate after window '", context.input_window->name,
                                  "' is a windowed aggregate: BindWindowedAggregate binds it");
  }
  ARROW_ASSIGN_OR_RAISE(auto bound,
                        BoundAggregation::Bind(input, context.input_keys, params.aggregates));
  BoundOperator result;
  if (context.bounded_input) {
    result.output_schema = bound->output_schema();
    result.make_operator =
        [bound](const TaskContext& task) -> arrow::Result<std::unique_ptr<Operator>> {
      auto op = std::make_unique<BoundedAggregateOperator>(bound, task);
      ARROW_RETURN_NOT_OK(op->Init());
      return op;
    };
    return result;
  }
  ARROW_ASSIGN_OR_RAISE(auto plan,
                        MakeChangelogPlan(input, context.input_keys, params.aggregates, *bound));
  result.output_schema = plan->output_schema;
  result.make_operator =
      [plan](const TaskContext& task) -> arrow::Result<std::unique_ptr<Operator>> {
    ARROW_ASSIGN_OR_RAISE(auto partial, GroupedAggregation::Make(plan->partial, task.pool));
    auto op = std::make_unique<ChangelogAggregateOperator>(plan, task.pool, std::move(partial));
    ARROW_RETURN_NOT_OK(op->Init());
    return op;
  };
  return result;
}

}  // namespace sabot
