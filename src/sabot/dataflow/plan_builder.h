#pragma once

// A fluent C++ builder for logical plans, mirroring the seeds' example:
//
//   PlanBuilder b;
//   b.Source(GeneratorSourceParams{.table = GeneratorTable::kTransactions}, 10)
//       .Map("amount_usd", "amount * 1.1")
//       .Filter("amount > 0")
//       .KeyBy({"user_id"})
//       .Window(Tumbling(std::chrono::minutes(5)))
//       .Aggregate({Sum("amount"), Count()}, 5)
//       .Sink(ConsoleSinkParams{});
//   ARROW_ASSIGN_OR_RAISE(LogicalPlan plan, b.Build());

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <arrow/result.h>
#include <arrow/status.h>

#include "sabot/dataflow/logical_plan.h"

namespace sabot {

class PlanBuilder;

// The output of one operator under construction; each call adds an operator fed by it and
// returns the new operator's stream. A Stream is a small value (a builder pointer and an id):
// copy it to fan out (two calls on one Stream give one operator two consumers).
//
// Parallelism: a call without one gives the new operator a parallelism chosen at Build: a
// window takes the parallelism of the aggregate that consumes it when that aggregate names
// one (the seeds' `.window(...).aggregate(..., parallelism=5)` is one step), every other
// operator its first input's (key_by always its input's). Sources default to 1.
//
// Partitioning: Rebalance(), Broadcast(), Forward(), PartitionByHash() and PartitionByRange()
// return the same stream with a request for the next edge(s) created from it (as Flink's
// DataStream.rebalance() does); KeyBy adds a key_by operator, which makes the next edge HASH.
//
// A call on a default-constructed Stream does nothing and returns a default-constructed Stream
// (there is no builder to add to); Build then reports the operators it misses.
//
// Names: `name` arguments name the new operator; by default it is named after its kind ("map",
// "map_2", ...). Misuse (a Stream of another builder, a default-constructed Stream, a name used
// twice) is recorded and reported by Build.
//
// Not thread-safe; the builder must outlive its streams.
class Stream {
 public:
  Stream() = default;

  Stream Map(std::vector<NamedExpression> columns, std::optional<int32_t> parallelism = {},
             std::string name = "");
  // One computed column: Map({{column, expression}}, ...).
  Stream Map(std::string column, std::string expression, std::optional<int32_t> parallelism = {},
             std::string name = "");
  // A map by a function the process running the job provides under `function`
  // (FunctionMapParams, function_map.h).
  Stream FunctionMap(std::string function, std::optional<int32_t> parallelism = {},
                     std::string name = "");
  Stream Filter(std::string predicate, std::optional<int32_t> parallelism = {},
                std::string name = "");
  Stream Project(std::vector<NamedExpression> columns, std::optional<int32_t> parallelism = {},
                 std::string name = "");
  Stream KeyBy(std::vector<std::string> keys, std::string name = "");
  Stream Window(WindowParams window, std::optional<int32_t> parallelism = {},
                std::string name = "");
  Stream Aggregate(std::vector<AggregateSpec> aggregates,
                   std::optional<int32_t> parallelism = {}, std::string name = "");
  // This stream is the left input (0), `right` the right input (1).
  Stream Join(const Stream& right, std::vector<std::string> left_keys,
              std::vector<std::string> right_keys, JoinType how = JoinType::kInner,
              std::optional<int32_t> parallelism = {}, std::string name = "");
  // The same with every join parameter (a broadcast join: JoinParams::broadcast).
  Stream Join(const Stream& right, JoinParams params, std::optional<int32_t> parallelism = {},
              std::string name = "");
  Stream Sink(FileSinkParams params, std::optional<int32_t> parallelism = {},
              std::string name = "");
  Stream Sink(ConsoleSinkParams params, std::optional<int32_t> parallelism = {},
              std::string name = "");
  Stream Sink(CollectSinkParams params, std::optional<int32_t> parallelism = {},
              std::string name = "");
  Stream Sink(VerifySinkParams params, std::optional<int32_t> parallelism = {},
              std::string name = "");

  Stream Rebalance() const { return WithRequest(PartitioningRequest::Rebalance()); }
  Stream Broadcast() const { return WithRequest(PartitioningRequest::Broadcast()); }
  Stream Forward() const { return WithRequest(PartitioningRequest::Forward()); }
  Stream PartitionByHash(std::vector<std::string> keys) const {
    return WithRequest(PartitioningRequest::Hash(std::move(keys)));
  }
  Stream PartitionByRange(std::vector<std::string> keys,
                          std::vector<std::vector<BoundaryValue>> boundaries = {}) const {
    return WithRequest(PartitioningRequest::Range(std::move(keys), std::move(boundaries)));
  }

  // The id of the operator whose output this is; -1 for a default-constructed Stream.
  OperatorId id() const { return id_; }

 private:
  friend class PlanBuilder;
  Stream(PlanBuilder* builder, OperatorId id) : builder_(builder), id_(id) {}
  Stream WithRequest(PartitioningRequest request) const {
    Stream s = *this;
    s.request_ = std::move(request);
    return s;
  }

  PlanBuilder* builder_ = nullptr;
  OperatorId id_ = -1;
  PartitioningRequest request_;
};

// Window and aggregate shorthands.
WindowParams Tumbling(std::chrono::milliseconds size);
WindowParams Sliding(std::chrono::milliseconds size, std::chrono::milliseconds slide);
WindowParams Session(std::chrono::milliseconds gap);
AggregateSpec Count();                                         // count of rows, as "count"
AggregateSpec CountRows(std::string alias);                    // count of rows, as `alias`
AggregateSpec Count(std::string column, std::string alias = "");  // non-null values of column
AggregateSpec Sum(std::string column, std::string alias = "");
AggregateSpec Min(std::string column, std::string alias = "");
AggregateSpec Max(std::string column, std::string alias = "");
AggregateSpec Mean(std::string column, std::string alias = "");
AggregateSpec CountDistinct(std::string column, std::string alias = "");
AggregateSpec First(std::string column, std::string alias = "");  // first non-null value
AggregateSpec Last(std::string column, std::string alias = "");   // last non-null value
AggregateSpec ApproxMedian(std::string column, std::string alias = "");  // t-digest estimate

// Builds one LogicalPlan. Operators get ids 0, 1, ... in the order they are added.
// Not thread-safe; not copyable (streams point to it).
class PlanBuilder {
 public:
  PlanBuilder() = default;
  PlanBuilder(const PlanBuilder&) = delete;
  PlanBuilder& operator=(const PlanBuilder&) = delete;

  Stream Source(GeneratorSourceParams params, int32_t parallelism = 1, std::string name = "");
  Stream Source(FileSourceParams params, int32_t parallelism = 1, std::string name = "");
  Stream Source(TableSourceParams params, int32_t parallelism = 1, std::string name = "");

  PlanBuilder& SetOptions(PlanOptions options) {
    options_ = options;
    return *this;
  }

  // Resolves parallelism (see Stream) and validates: LogicalPlan::Make's errors, or the first
  // misuse recorded while building. May be called again after more operators are added.
  arrow::Result<LogicalPlan> Build() const;

 private:
  friend class Stream;
  struct Node {
    OperatorSpec spec;
    std::optional<int32_t> parallelism;  // as given; resolved by Build
  };

  // Adds an operator fed by `inputs` (with their requests, into inputs 0, 1, ...).
  Stream AddOperator(OperatorParams params, std::optional<int32_t> parallelism, std::string name,
                     const std::vector<const Stream*>& inputs);
  void RecordError(arrow::Status status);

  std::vector<Node> nodes_;
  std::vector<EdgeSpec> edges_;
  PlanOptions options_;
  arrow::Status first_error_;
};

}  // namespace sabot
