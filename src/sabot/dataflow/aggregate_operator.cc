#include "sabot/dataflow/aggregate_operator.h"

#include <algorithm>
#include <functional>
#include <numeric>
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
#include <arrow/util/byte_size.h>

#include "sabot/dataflow/grouped_aggregation.h"
#include "sabot/dataflow/state_spill.h"
#include "sabot/partition/key_hash.h"

namespace sabot {

namespace cp = arrow::compute;

namespace {

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

class BoundedAggregateOperator : public AggregateOperatorBase {
 public:
  // `partials`: the aggregation's mergeable partial form (null when it has none): the state
  // aggregates partials, finalized at Finish, so that a snapshot can write it as rows.
  BoundedAggregateOperator(std::shared_ptr<const BoundAggregation> bound,
                           std::shared_ptr<const PartialAggregation> partials,
                           std::string no_partials, const TaskContext& task)
      : spill_(task.spill_directory, SpillDirectoryName("aggregate", task),
               "aggregate '" + (task.spec != nullptr ? task.spec->name : std::string()) + "'"),
        bound_(std::move(bound)),
        partials_(std::move(partials)),
        no_partials_(std::move(no_partials)),
        pool_(task.pool),
        budget_(task.state_budget_bytes) {}

  arrow::Status Init() {
    ARROW_ASSIGN_OR_RAISE(aggregation_, NewAggregation(/*merged=*/false));
    return arrow::Status::OK();
  }

  arrow::Status Process(int32_t, const std::shared_ptr<arrow::RecordBatch>& batch,
                        OperatorOutput*) override {
    rows_in_ += batch->num_rows();
    return aggregation_->Consume(batch);
  }

  arrow::Status Finish(OperatorOutput* out) override {
    auto emit = [&](std::shared_ptr<arrow::RecordBatch> batch) -> arrow::Status {
      if (partials_ != nullptr) {
        ARROW_ASSIGN_OR_RAISE(batch, partials_->Finalize(*batch, pool_));
      }
      return EmitCounted(batch, out);
    };
    if (merged_ != nullptr) {
      // The partials since the last snapshot or restore, after the ones it holds.
      GraceAggregation* merged = merged_.get();
      ARROW_RETURN_NOT_OK(aggregation_->Finish(
          [merged](std::shared_ptr<arrow::RecordBatch> rows) { return merged->Consume(rows); }));
      ARROW_RETURN_NOT_OK(merged_->Finish(emit));
    } else {
      ARROW_RETURN_NOT_OK(aggregation_->Finish(emit));
    }
    aggregation_.reset();
    merged_.reset();
    return arrow::Status::OK();
  }

  void Abort() override {
    aggregation_.reset();
    merged_.reset();
    spill_.Remove();  // now, not when the instance is destroyed (a restarted job may keep it)
  }

  int64_t state_spilled_bytes() const override { return spill_.spilled_bytes(); }

  // The snapshot: part "partials", every key's partial results (PartialAggregation::partial()'s
  // output schema; spilled partitions read back), which become the state the aggregation goes
  // on from. NotImplemented naming the aggregate when its functions have no partial form.
  arrow::Status Snapshot(CheckpointId, StateWriter* state) override {
    if (partials_ == nullptr) {
      return arrow::Status::NotImplemented(spill_.owner(), " cannot snapshot its state: ",
                                           no_partials_);
    }
    ARROW_ASSIGN_OR_RAISE(auto merged, NewAggregation(/*merged=*/true));
    std::vector<std::shared_ptr<arrow::RecordBatch>> rows;
    auto take = [&](std::shared_ptr<arrow::RecordBatch> batch) -> arrow::Status {
      rows.push_back(batch);
      return merged->Consume(batch);
    };
    if (merged_ != nullptr) ARROW_RETURN_NOT_OK(merged_->Finish(take));
    ARROW_RETURN_NOT_OK(aggregation_->Finish(take));
    ARROW_ASSIGN_OR_RAISE(aggregation_, NewAggregation(/*merged=*/false));
    merged_ = std::move(merged);
    ARROW_ASSIGN_OR_RAISE(auto table, arrow::Table::FromRecordBatches(
                                          partials_->partial()->output_schema(), rows));
    return state->Put("partials", std::move(table));
  }

  arrow::Status Restore(CheckpointId, StateReader* state) override {
    ARROW_ASSIGN_OR_RAISE(auto table, state->Get("partials"));
    if (table == nullptr) return arrow::Status::OK();
    if (partials_ == nullptr) {
      return arrow::Status::Invalid(spill_.owner(), ": a snapshot of partial results, which "
                                    "it cannot restore: ", no_partials_);
    }
    if (!table->schema()->Equals(*partials_->partial()->output_schema())) {
      return arrow::Status::Invalid(spill_.owner(), ": the snapshot's partial results have "
                                    "columns (", table->schema()->ToString(), "), not (",
                                    partials_->partial()->output_schema()->ToString(), ")");
    }
    ARROW_ASSIGN_OR_RAISE(merged_, NewAggregation(/*merged=*/true));
    arrow::TableBatchReader reader(*table);
    std::shared_ptr<arrow::RecordBatch> batch;
    while (true) {
      ARROW_RETURN_NOT_OK(reader.ReadNext(&batch));
      if (batch == nullptr) return arrow::Status::OK();
      ARROW_RETURN_NOT_OK(merged_->Consume(batch));
    }
  }

 private:
  arrow::Result<std::unique_ptr<GraceAggregation>> NewAggregation(bool merged) {
    std::shared_ptr<const BoundAggregation> bound =
        partials_ == nullptr ? bound_ : merged ? partials_->remerge() : partials_->partial();
    auto aggregation = std::make_unique<GraceAggregation>(
        std::move(bound), pool_, budget_, &spill_, 0, "level" + std::to_string(next_id_++));
    ARROW_RETURN_NOT_OK(aggregation->Init());
    return aggregation;
  }

  SpillDirectory spill_;  // outlives the aggregations
  std::shared_ptr<const BoundAggregation> bound_;
  std::shared_ptr<const PartialAggregation> partials_;
  std::string no_partials_;
  arrow::MemoryPool* pool_;
  int64_t budget_;
  int64_t next_id_ = 0;
  std::unique_ptr<GraceAggregation> aggregation_;
  // The partial results a snapshot wrote or a restore read; null before either.
  std::unique_ptr<GraceAggregation> merged_;
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

// The changelog state of a set of keys: a dense group id per key (Arrow's Grouper), and the
// partial results of every group, stored as the batches in which they were last updated
// (`chunks_`) with each group's row among them (`location_`). A batch's update appends one chunk
// with the touched groups' new partials; when the chunks hold more than twice the live rows they
// are compacted into one. Lookups and updates thus cost the rows a batch touches (and the chunks
// they are in), amortized. Its table form (ToTable / FromTable: the keys, dictionaries decoded,
// then the partial columns, one row per key) is what spills and what a checkpoint holds.
class ChangelogState {
 public:
  ChangelogState(std::shared_ptr<const ChangelogPlan> plan, arrow::MemoryPool* pool)
      : plan_(std::move(plan)), ctx_(pool) {}

  arrow::Status Init() {
    if (plan_->num_keys > 0) {
      ARROW_ASSIGN_OR_RAISE(grouper_, cp::Grouper::Make(plan_->grouping_types, &ctx_));
    }
    return arrow::Status::OK();
  }

  // Folds a batch's partial results `delta` (keys + partial columns, one row per key) into the
  // state and returns the changelog rows of the change.
  arrow::Result<std::shared_ptr<arrow::RecordBatch>> Apply(
      const std::shared_ptr<arrow::RecordBatch>& delta) {
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
      if (num_groups_ > known) {
        // The grouper's copy of the new keys, estimated from the batch's key bytes.
        int64_t key_bytes = 0;
        for (size_t k = 0; k < num_keys; ++k) {
          key_bytes += arrow::util::TotalBufferSize(*delta->column_data(static_cast<int>(k)));
        }
        key_bytes_ += key_bytes * (num_groups_ - known) / std::max<int64_t>(n, 1);
      }
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
    auto changelog =
        arrow::RecordBatch::Make(plan_->output_schema, retracts + n, std::move(columns));

    ARROW_RETURN_NOT_OK(Store(ids, std::move(new_partials)));
    return changelog;
  }

  // What the state holds, for the state budget: the partials, the row index, an estimate of the
  // grouper's keys.
  int64_t bytes() const {
    int64_t bytes = static_cast<int64_t>(location_.capacity() * sizeof(int64_t)) + key_bytes_;
    for (const auto& chunk : chunks_) {
      for (const auto& array : chunk) bytes += arrow::util::TotalBufferSize(*array->data());
    }
    return bytes;
  }
  uint32_t num_groups() const { return num_groups_; }

  // The schema of ToTable: the keys (dictionaries decoded), then the partial columns.
  static std::shared_ptr<arrow::Schema> TableSchema(const ChangelogPlan& plan) {
    const auto& partial = plan.partial->output_schema()->fields();
    arrow::FieldVector fields;
    for (size_t k = 0; k < plan.num_keys; ++k) {
      fields.push_back(partial[k]->WithType(plan.grouping_types[k].GetSharedPtr()));
    }
    for (size_t p = 0; p < plan.partial_columns.size(); ++p) {
      fields.push_back(partial[plan.num_keys + p]);
    }
    return arrow::schema(std::move(fields));
  }

  // One row per key, in group id order: fresh arrays, which the state never changes.
  arrow::Result<std::shared_ptr<arrow::RecordBatch>> ToBatch() {
    arrow::ArrayVector columns;
    if (plan_->num_keys > 0) {
      ARROW_ASSIGN_OR_RAISE(cp::ExecBatch uniques, grouper_->GetUniques());
      for (const auto& value : uniques.values) {
        ARROW_ASSIGN_OR_RAISE(auto array, ToArray(value, ctx_.memory_pool()));
        columns.push_back(std::move(array));
      }
    }
    arrow::Int64Builder rows(ctx_.memory_pool());
    ARROW_RETURN_NOT_OK(rows.AppendValues(location_));
    ARROW_ASSIGN_OR_RAISE(auto all, rows.Finish());
    for (size_t p = 0; p < plan_->partial_columns.size(); ++p) {
      arrow::ArrayVector column_chunks;
      for (const auto& chunk : chunks_) column_chunks.push_back(chunk[p]);
      auto stored = std::make_shared<arrow::ChunkedArray>(std::move(column_chunks),
                                                          plan_->partial_columns[p].type);
      ARROW_ASSIGN_OR_RAISE(auto taken,
                            cp::Take(stored, all, cp::TakeOptions::Defaults(), &ctx_));
      ARROW_ASSIGN_OR_RAISE(auto array, ToArray(taken, ctx_.memory_pool()));
      columns.push_back(std::move(array));
    }
    return arrow::RecordBatch::Make(TableSchema(*plan_), num_groups_, std::move(columns));
  }

  // Loads `rows` (of TableSchema, one row per key, no key twice) into an empty state.
  arrow::Status Load(const std::shared_ptr<arrow::RecordBatch>& rows) {
    const int64_t n = rows->num_rows();
    if (n == 0) return arrow::Status::OK();
    if (num_groups_ != 0) return arrow::Status::Invalid("changelog state loaded twice");
    if (!rows->schema()->Equals(*TableSchema(*plan_))) {
      return arrow::Status::Invalid("changelog state has columns (", rows->schema()->ToString(),
                                    "), not (", TableSchema(*plan_)->ToString(), ")");
    }
    if (plan_->num_keys > 0) {
      std::vector<arrow::Datum> keys;
      for (size_t k = 0; k < plan_->num_keys; ++k) keys.emplace_back(rows->column(int(k)));
      cp::ExecBatch key_batch(std::move(keys), n);
      ARROW_RETURN_NOT_OK(grouper_->Consume(cp::ExecSpan(key_batch)).status());
      if (grouper_->num_groups() != static_cast<uint32_t>(n)) {
        return arrow::Status::Invalid("changelog state holds a key twice");
      }
      int64_t key_bytes = 0;
      for (size_t k = 0; k < plan_->num_keys; ++k) {
        key_bytes += arrow::util::TotalBufferSize(*rows->column_data(static_cast<int>(k)));
      }
      key_bytes_ = key_bytes;
    } else if (n != 1) {
      return arrow::Status::Invalid("a global changelog state has ", n, " rows");
    }
    num_groups_ = static_cast<uint32_t>(n);
    arrow::ArrayVector partials;
    for (size_t p = 0; p < plan_->partial_columns.size(); ++p) {
      partials.push_back(rows->column(static_cast<int>(plan_->num_keys + p)));
    }
    std::vector<uint32_t> ids(static_cast<size_t>(n));
    std::iota(ids.begin(), ids.end(), 0);
    return Store(ids, std::move(partials));
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
  std::unique_ptr<cp::Grouper> grouper_;  // key -> group id; null without keys
  uint32_t num_groups_ = 0;
  int64_t key_bytes_ = 0;                  // estimate of the grouper's keys
  std::vector<arrow::ArrayVector> chunks_;  // per chunk, one array per partial column
  std::vector<int64_t> chunk_starts_;       // per chunk, its first row in the concatenation
  std::vector<int64_t> location_;           // group id -> row in the chunks, concatenated
  int64_t stored_rows_ = 0;
};

// The unbounded aggregate's task instance. Its state is split by key hash into kSpillPartitions
// ChangelogStates when it has a state budget and keys (one state otherwise). Each partition is
// resident (in memory) or spilled (its table form in a file): past the budget, the largest
// resident partitions are written out. A batch's partial results for a resident partition
// update it at once (its changelog is emitted with the batch); those for a spilled partition
// wait in memory (`pending_`, in arrival order) until they hold half the budget, or the input
// ends, when each spilled partition is read back, updated by its pending results in order
// (emitting their changelogs, as they would have been) and written out again. The state thus
// never fails for want of memory while the disk has room; an update of a spilled key is
// emitted later, but in order.
class ChangelogAggregateOperator : public AggregateOperatorBase {
 public:
  ChangelogAggregateOperator(std::shared_ptr<const ChangelogPlan> plan, const TaskContext& task,
                             std::unique_ptr<GroupedAggregation> partial)
      : plan_(std::move(plan)),
        ctx_(task.pool),
        partial_(std::move(partial)),
        budget_(task),
        spill_(task.spill_directory, SpillDirectoryName("changelog", task),
               "aggregate '" + budget_.operator_name + "'") {}

  arrow::Status Init() {
    const int32_t n = budget_.bytes > 0 && plan_->num_keys > 0 ? kSpillPartitions : 1;
    partitions_.resize(static_cast<size_t>(n));
    for (auto& partition : partitions_) ARROW_RETURN_NOT_OK(Fresh(&partition));
    if (n > 1) {
      std::vector<std::string> names;
      const auto schema = ChangelogState::TableSchema(*plan_);
      for (size_t k = 0; k < plan_->num_keys; ++k) names.push_back(schema->field(int(k))->name());
      ARROW_ASSIGN_OR_RAISE(hasher_, KeyHasher::Make(names, *schema));
      spilled_ = std::make_unique<SpillRuns>(&spill_, "state", ctx_.memory_pool());
    }
    return arrow::Status::OK();
  }

  arrow::Status Process(int32_t, const std::shared_ptr<arrow::RecordBatch>& batch,
                        OperatorOutput* out) override {
    if (batch->num_rows() == 0) return arrow::Status::OK();
    rows_in_ += batch->num_rows();
    ARROW_RETURN_NOT_OK(partial_->Consume(*batch));
    ARROW_ASSIGN_OR_RAISE(auto delta, partial_->Finish());
    if (partitions_.size() == 1) {
      ARROW_ASSIGN_OR_RAISE(auto changelog, partitions_[0].state->Apply(delta));
      return EmitCounted(changelog, out);
    }
    ARROW_ASSIGN_OR_RAISE(auto split, Split(delta));
    for (int32_t p = 0; p < kSpillPartitions; ++p) {
      if (split[p] == nullptr) continue;
      Partition& partition = partitions_[p];
      if (partition.spilled) {
        pending_bytes_ += arrow::util::TotalBufferSize(*split[p]);
        partition.pending.push_back(std::move(split[p]));
        continue;
      }
      if (!partition.pending.empty()) ARROW_RETURN_NOT_OK(Flush(p, out));
      ARROW_ASSIGN_OR_RAISE(auto changelog, partition.state->Apply(split[p]));
      ARROW_RETURN_NOT_OK(EmitCounted(changelog, out));
    }
    return EnforceBudget(out);
  }

  arrow::Status Finish(OperatorOutput* out) override {
    for (int32_t p = 0; p < static_cast<int32_t>(partitions_.size()); ++p) {
      if (!partitions_[p].pending.empty()) ARROW_RETURN_NOT_OK(Flush(p, out));
    }
    Abort();
    return arrow::Status::OK();
  }

  void Abort() override {
    partitions_.clear();
    pending_bytes_ = 0;
    if (spilled_ != nullptr) spilled_->Clear();
    spill_.Remove();
  }

  int64_t state_spilled_bytes() const override { return spill_.spilled_bytes(); }

  // The snapshot: part "state", every key's partials (ChangelogState::TableSchema: resident
  // partitions copied, spilled ones read back), and part "pending", the partial results not yet
  // folded in (the delta schema plus `batch`, their order), which a restored instance emits.
  arrow::Status Snapshot(CheckpointId, StateWriter* state) override {
    std::vector<std::shared_ptr<arrow::RecordBatch>> rows;
    std::vector<std::shared_ptr<arrow::RecordBatch>> pending;
    int64_t sequence = 0;
    for (int32_t p = 0; p < static_cast<int32_t>(partitions_.size()); ++p) {
      Partition& partition = partitions_[p];
      if (partition.spilled) {
        ARROW_RETURN_NOT_OK(spilled_->Read(p, [&](std::shared_ptr<arrow::RecordBatch> b) {
          rows.push_back(std::move(b));
          return arrow::Status::OK();
        }));
      } else {
        ARROW_ASSIGN_OR_RAISE(auto batch, partition.state->ToBatch());
        rows.push_back(std::move(batch));
      }
      for (const auto& delta : partition.pending) {
        ARROW_ASSIGN_OR_RAISE(auto numbered, WithSequence(delta, sequence++));
        pending.push_back(std::move(numbered));
      }
    }
    ARROW_ASSIGN_OR_RAISE(auto table,
                          arrow::Table::FromRecordBatches(ChangelogState::TableSchema(*plan_),
                                                          rows));
    ARROW_RETURN_NOT_OK(state->Put("state", std::move(table)));
    ARROW_ASSIGN_OR_RAISE(auto pending_table,
                          arrow::Table::FromRecordBatches(PendingSchema(), pending));
    return state->Put("pending", std::move(pending_table));
  }

  arrow::Status Restore(CheckpointId, StateReader* state) override {
    ARROW_ASSIGN_OR_RAISE(auto table, state->Get("state"));
    if (table == nullptr) return arrow::Status::OK();
    ARROW_ASSIGN_OR_RAISE(auto rows, table->CombineChunksToBatch(ctx_.memory_pool()));
    if (partitions_.size() == 1) {
      ARROW_RETURN_NOT_OK(partitions_[0].state->Load(rows));
    } else {
      ARROW_ASSIGN_OR_RAISE(auto split, Split(rows));
      for (int32_t p = 0; p < kSpillPartitions; ++p) {
        if (split[p] != nullptr) ARROW_RETURN_NOT_OK(partitions_[p].state->Load(split[p]));
      }
    }
    ARROW_ASSIGN_OR_RAISE(auto pending, state->Get("pending"));
    if (pending != nullptr && pending->num_rows() > 0) {
      // Restored in order, each to the partition of its keys; emitted at the next Flush.
      ARROW_ASSIGN_OR_RAISE(auto all, pending->CombineChunksToBatch(ctx_.memory_pool()));
      const int seq = all->num_columns() - 1;
      const auto& numbers = static_cast<const arrow::Int64Array&>(*all->column(seq));
      ARROW_ASSIGN_OR_RAISE(auto deltas, all->RemoveColumn(seq));
      for (int64_t first = 0; first < deltas->num_rows();) {
        int64_t last = first;
        while (last + 1 < deltas->num_rows() && numbers.Value(last + 1) == numbers.Value(first)) {
          ++last;
        }
        auto delta = deltas->Slice(first, last - first + 1);
        if (partitions_.size() == 1) {
          partitions_[0].pending.push_back(delta);
        } else {
          ARROW_ASSIGN_OR_RAISE(auto split, Split(delta));
          for (int32_t p = 0; p < kSpillPartitions; ++p) {
            if (split[p] != nullptr) partitions_[p].pending.push_back(std::move(split[p]));
          }
        }
        pending_bytes_ += arrow::util::TotalBufferSize(*delta);
        first = last + 1;
      }
    }
    // A snapshot of spilled state comes back whole: past the budget it goes to disk again (the
    // pending results are folded in at the next batch, as before the snapshot).
    if (partitions_.size() > 1) return EvictOverBudget();
    return arrow::Status::OK();
  }

 private:
  struct Partition {
    std::unique_ptr<ChangelogState> state;  // empty while spilled
    bool spilled = false;
    // Partial results waiting for the partition (in arrival order).
    std::vector<std::shared_ptr<arrow::RecordBatch>> pending;
  };

  arrow::Status Fresh(Partition* partition) {
    partition->state = std::make_unique<ChangelogState>(plan_, ctx_.memory_pool());
    return partition->state->Init();
  }

  // `rows` (keys first, dictionaries decoded or not) split by partition; null for none.
  arrow::Result<std::vector<std::shared_ptr<arrow::RecordBatch>>> Split(
      const std::shared_ptr<arrow::RecordBatch>& rows) {
    const int64_t n = rows->num_rows();
    std::vector<arrow::ArrayVector> decoded;
    std::vector<const arrow::ArrayData*> keys;
    arrow::ArrayVector holders;
    for (size_t k = 0; k < plan_->num_keys; ++k) {
      ARROW_ASSIGN_OR_RAISE(auto key, DecodeDictionary(rows->column(int(k)), &ctx_));
      ARROW_ASSIGN_OR_RAISE(auto array, ToArray(key, ctx_.memory_pool()));
      keys.push_back(array->data().get());
      holders.push_back(std::move(array));
    }
    hashes_.resize(static_cast<size_t>(n));
    ARROW_RETURN_NOT_OK(hasher_->HashArrays(keys, n, hashes_.data()));
    std::vector<std::vector<int64_t>> rows_of(kSpillPartitions);
    for (int64_t i = 0; i < n; ++i) rows_of[spilled_->PartitionOf(hashes_[i])].push_back(i);
    std::vector<std::shared_ptr<arrow::RecordBatch>> split(kSpillPartitions);
    for (int32_t p = 0; p < kSpillPartitions; ++p) {
      if (rows_of[p].empty()) continue;
      if (static_cast<int64_t>(rows_of[p].size()) == n) {
        split[p] = rows;
        break;
      }
      arrow::Int64Builder indices(ctx_.memory_pool());
      ARROW_RETURN_NOT_OK(indices.AppendValues(rows_of[p]));
      ARROW_ASSIGN_OR_RAISE(auto index_array, indices.Finish());
      ARROW_ASSIGN_OR_RAISE(arrow::Datum taken,
                            cp::Take(rows, index_array, cp::TakeOptions::NoBoundsCheck(), &ctx_));
      split[p] = taken.record_batch();
    }
    return split;
  }

  // Past the budget: the largest resident partitions are written out; pending results over
  // half the budget are folded into their partitions.
  arrow::Status EnforceBudget(OperatorOutput* out) {
    ARROW_RETURN_NOT_OK(EvictOverBudget());
    if (pending_bytes_ > budget_.bytes / 2) {
      for (int32_t p = 0; p < kSpillPartitions; ++p) {
        if (!partitions_[p].pending.empty()) ARROW_RETURN_NOT_OK(Flush(p, out));
      }
    }
    return arrow::Status::OK();
  }

  // Writes out the largest resident partitions until the resident ones and the pending results
  // fit the budget (or none is left to write out).
  arrow::Status EvictOverBudget() {
    int64_t resident = 0;
    for (const auto& partition : partitions_) {
      if (!partition.spilled) resident += partition.state->bytes();
    }
    while (resident + pending_bytes_ > budget_.bytes) {
      int32_t largest = -1;
      int64_t largest_bytes = 0;
      for (int32_t p = 0; p < kSpillPartitions; ++p) {
        const auto& partition = partitions_[p];
        if (partition.spilled || partition.state->num_groups() == 0) continue;
        if (partition.state->bytes() > largest_bytes) {
          largest = p;
          largest_bytes = partition.state->bytes();
        }
      }
      if (largest < 0) break;
      ARROW_RETURN_NOT_OK(Evict(largest));
      resident -= largest_bytes;
    }
    return arrow::Status::OK();
  }

  // Writes resident partition p out.
  arrow::Status Evict(int32_t p) {
    Partition& partition = partitions_[p];
    ARROW_ASSIGN_OR_RAISE(auto rows, partition.state->ToBatch());
    spilled_->Clear(p);
    ARROW_RETURN_NOT_OK(spilled_->AppendTo(p, rows));
    partition.state.reset();
    partition.spilled = true;
    return arrow::Status::OK();
  }

  // Folds partition p's pending results into it, in order, emitting their changelogs; a
  // spilled partition is read back first and written out again after.
  arrow::Status Flush(int32_t p, OperatorOutput* out) {
    Partition& partition = partitions_[p];
    const bool spilled = partition.spilled;
    if (spilled) {
      ARROW_RETURN_NOT_OK(Fresh(&partition));
      std::vector<std::shared_ptr<arrow::RecordBatch>> rows;
      ARROW_RETURN_NOT_OK(spilled_->Read(p, [&](std::shared_ptr<arrow::RecordBatch> b) {
        rows.push_back(std::move(b));
        return arrow::Status::OK();
      }));
      if (!rows.empty()) {
        ARROW_ASSIGN_OR_RAISE(auto table, arrow::Table::FromRecordBatches(rows));
        ARROW_ASSIGN_OR_RAISE(auto all, table->CombineChunksToBatch(ctx_.memory_pool()));
        ARROW_RETURN_NOT_OK(partition.state->Load(all));
      }
      partition.spilled = false;
    }
    for (const auto& delta : partition.pending) {
      pending_bytes_ -= arrow::util::TotalBufferSize(*delta);
      ARROW_ASSIGN_OR_RAISE(auto changelog, partition.state->Apply(delta));
      ARROW_RETURN_NOT_OK(EmitCounted(changelog, out));
    }
    partition.pending.clear();
    if (pending_bytes_ < 0) pending_bytes_ = 0;
    if (spilled) return Evict(p);
    return arrow::Status::OK();
  }

  std::shared_ptr<arrow::Schema> PendingSchema() const {
    arrow::FieldVector fields = plan_->partial->output_schema()->fields();
    fields.push_back(arrow::field("batch", arrow::int64(), false));
    return arrow::schema(std::move(fields));
  }

  arrow::Result<std::shared_ptr<arrow::RecordBatch>> WithSequence(
      const std::shared_ptr<arrow::RecordBatch>& delta, int64_t sequence) const {
    arrow::Int64Builder numbers(ctx_.memory_pool());
    ARROW_RETURN_NOT_OK(numbers.AppendValues(std::vector<int64_t>(delta->num_rows(), sequence)));
    ARROW_ASSIGN_OR_RAISE(auto column, numbers.Finish());
    arrow::ArrayVector columns = delta->columns();
    columns.push_back(std::move(column));
    return arrow::RecordBatch::Make(PendingSchema(), delta->num_rows(), std::move(columns));
  }

  std::shared_ptr<const ChangelogPlan> plan_;
  mutable cp::ExecContext ctx_;
  std::unique_ptr<GroupedAggregation> partial_;  // one batch's partial results
  const TaskStateBudget budget_;
  SpillDirectory spill_;
  std::vector<Partition> partitions_;
  std::unique_ptr<KeyHasher> hasher_;     // of the state's keys; with partitions
  std::unique_ptr<SpillRuns> spilled_;    // the spilled partitions' tables
  std::vector<uint64_t> hashes_;
  int64_t pending_bytes_ = 0;
};

}  // namespace

struct PartialAggregation::Plan {
  std::shared_ptr<const ChangelogPlan> changelog;
};

arrow::Result<std::shared_ptr<const PartialAggregation>> PartialAggregation::Make(
    const std::shared_ptr<arrow::Schema>& input, const std::vector<std::string>& keys,
    const std::vector<AggregateSpec>& aggregates) {
  ARROW_ASSIGN_OR_RAISE(auto final_bound, BoundAggregation::Bind(input, keys, aggregates));
  ARROW_ASSIGN_OR_RAISE(auto changelog, MakeChangelogPlan(input, keys, aggregates, *final_bound));
  const auto& partial_schema = changelog->partial->output_schema();
  std::vector<AggregateSpec> remerge_specs;
  for (size_t p = 0; p < changelog->partial_columns.size(); ++p) {
    const std::string& name = partial_schema->field(static_cast<int>(keys.size() + p))->name();
    AggregateFunction function = AggregateFunction::kSum;
    switch (changelog->partial_columns[p].combine) {
      case Combine::kAdd: function = AggregateFunction::kSum; break;
      case Combine::kMin: function = AggregateFunction::kMin; break;
      case Combine::kMax: function = AggregateFunction::kMax; break;
      case Combine::kKeepOld: function = AggregateFunction::kFirst; break;
      case Combine::kTakeNew: function = AggregateFunction::kLast; break;
    }
    remerge_specs.push_back({function, name, name});
  }
  ARROW_ASSIGN_OR_RAISE(auto remerge, BoundAggregation::Bind(partial_schema, keys, remerge_specs));
  if (!remerge->output_schema()->Equals(*partial_schema, /*check_metadata=*/false)) {
    return arrow::Status::NotImplemented(
        "the partial results of these aggregates do not merge into their own types (",
        partial_schema->ToString(), " -> ", remerge->output_schema()->ToString(), ")");
  }
  auto plan = std::make_shared<Plan>();
  plan->changelog = std::move(changelog);
  return std::make_shared<const PartialAggregation>(
      std::move(plan), plan->changelog->partial, std::move(remerge),
      final_bound->output_schema());
}

arrow::Result<std::shared_ptr<arrow::RecordBatch>> PartialAggregation::Finalize(
    const arrow::RecordBatch& partials, arrow::MemoryPool* pool) const {
  const ChangelogPlan& plan = *plan_->changelog;
  cp::ExecContext ctx(pool);
  arrow::ArrayVector columns;
  for (size_t k = 0; k < plan.num_keys; ++k) columns.push_back(partials.column(int(k)));
  arrow::ArrayVector partial_columns;
  for (size_t p = 0; p < plan.partial_columns.size(); ++p) {
    partial_columns.push_back(partials.column(static_cast<int>(plan.num_keys + p)));
  }
  for (const auto& aggregate : plan.aggregates) {
    ARROW_ASSIGN_OR_RAISE(auto value, FinalValue(aggregate, partial_columns, &ctx));
    columns.push_back(std::move(value));
  }
  return arrow::RecordBatch::Make(output_schema_, partials.num_rows(), std::move(columns));
}

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
    std::shared_ptr<const PartialAggregation> partials;
    std::string no_partials;
    auto made = PartialAggregation::Make(input, context.input_keys, params.aggregates);
    if (made.ok() && (*made)->output_schema()->Equals(*bound->output_schema())) {
      partials = std::move(*made);
    } else {
      no_partials = made.ok() ? std::string("its partial results differ in type")
                              : made.status().message();
    }
    result.make_operator =
        [bound, partials, no_partials](
            const TaskContext& task) -> arrow::Result<std::unique_ptr<Operator>> {
      auto op = std::make_unique<BoundedAggregateOperator>(bound, partials, no_partials, task);
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
    auto op = std::make_unique<ChangelogAggregateOperator>(plan, task, std::move(partial));
    ARROW_RETURN_NOT_OK(op->Init());
    return op;
  };
  return result;
}

}  // namespace sabot
