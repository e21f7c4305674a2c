#include "sabot/partition/partitioner.h"

#include <algorithm>

#include "sabot/partition/hash_partitioner.h"
#include "sabot/partition/range_partitioner.h"
#include "sabot/partition/row_scatter.h"

namespace sabot {

namespace {

// FORWARD: the whole batch to partition writer_task % n.
class ForwardPartitioner final : public Partitioner {
 public:
  ForwardPartitioner(std::shared_ptr<const PartitionSpec> spec,
                     std::shared_ptr<arrow::Schema> schema, TaskIndex writer_task)
      : Partitioner(std::move(spec), std::move(schema), writer_task),
        target_(writer_task % num_partitions()) {}

 protected:
  arrow::Result<PartitionedBatch> PartitionChecked(
      const std::shared_ptr<arrow::RecordBatch>& batch) override {
    PartitionedBatch out;
    out.batches.resize(static_cast<size_t>(num_partitions()));
    out.batches[target_] = batch;
    return out;
  }

 private:
  PartitionId target_;
};

// BROADCAST: the same batch object to every partition.
class BroadcastPartitioner final : public Partitioner {
 public:
  BroadcastPartitioner(std::shared_ptr<const PartitionSpec> spec,
                       std::shared_ptr<arrow::Schema> schema, TaskIndex writer_task)
      : Partitioner(std::move(spec), std::move(schema), writer_task) {}

 protected:
  arrow::Result<PartitionedBatch> PartitionChecked(
      const std::shared_ptr<arrow::RecordBatch>& batch) override {
    PartitionedBatch out;
    out.batches.assign(static_cast<size_t>(num_partitions()), batch);
    return out;
  }
};

// REBALANCE: row j of the task's stream goes to (writer_task + j) % n.
class RebalancePartitioner final : public Partitioner {
 public:
  static arrow::Result<std::unique_ptr<Partitioner>> Make(std::shared_ptr<const PartitionSpec> spec,
                                                          std::shared_ptr<arrow::Schema> schema,
                                                          TaskIndex writer_task,
                                                          arrow::MemoryPool* pool) {
    std::unique_ptr<RebalancePartitioner> partitioner(
        new RebalancePartitioner(std::move(spec), std::move(schema), writer_task));
    ARROW_ASSIGN_OR_RAISE(partitioner->scatter_,
                          RowScatter::Make(partitioner->num_partitions(), pool));
    return partitioner;
  }

 protected:
  arrow::Result<PartitionedBatch> PartitionChecked(
      const std::shared_ptr<arrow::RecordBatch>& batch) override {
    const int64_t rows = batch->num_rows();
    const int32_t n = num_partitions();
    ids_.resize(static_cast<size_t>(rows));
    PartitionId next = next_;
    for (int64_t i = 0; i < rows; ++i) {
      ids_[i] = next;
      next = next + 1 == n ? 0 : next + 1;
    }
    PartitionedBatch out;
    ARROW_ASSIGN_OR_RAISE(out.batches, scatter_->Scatter(batch, ids_.data()));
    next_ = next;  // only once the batch is done, so a failure leaves the state unchanged
    return out;
  }

 private:
  RebalancePartitioner(std::shared_ptr<const PartitionSpec> spec,
                       std::shared_ptr<arrow::Schema> schema, TaskIndex writer_task)
      : Partitioner(std::move(spec), std::move(schema), writer_task),
        next_(writer_task % num_partitions()) {}

  PartitionId next_;
  std::unique_ptr<RowScatter> scatter_;
  std::vector<PartitionId> ids_;
};

}  // namespace

arrow::Status CheckSameFields(const arrow::Schema& bound, const arrow::Schema& batch_schema) {
  if (&bound == &batch_schema) return arrow::Status::OK();
  const int n = std::min(bound.num_fields(), batch_schema.num_fields());
  for (int i = 0; i < n; ++i) {
    const arrow::Field& expected = *bound.field(i);
    const arrow::Field& actual = *batch_schema.field(i);
    if (expected.name() != actual.name()) {
      return arrow::Status::Invalid("schema drift: batch field ", i, " is named '", actual.name(),
                                    "' but the partitioner was bound to '", expected.name(), "'");
    }
    if (!expected.type()->Equals(*actual.type())) {
      return arrow::Status::Invalid("schema drift: batch field ", i, " '", actual.name(),
                                    "' has type ", actual.type()->ToString(),
                                    " but the partitioner was bound to ",
                                    expected.type()->ToString());
    }
  }
  if (bound.num_fields() != batch_schema.num_fields()) {
    const bool extra = batch_schema.num_fields() > bound.num_fields();
    const auto& field = extra ? batch_schema.field(n) : bound.field(n);
    return arrow::Status::Invalid("schema drift: the batch has ", batch_schema.num_fields(),
                                  " fields but the partitioner was bound to ", bound.num_fields(),
                                  "; field ", n, " '", field->name(), "' is ",
                                  extra ? "extra" : "missing");
  }
  return arrow::Status::OK();
}

arrow::Result<PartitionedBatch> Partitioner::Partition(
    const std::shared_ptr<arrow::RecordBatch>& batch) {
  if (batch == nullptr) return arrow::Status::Invalid("Partitioner::Partition got a null batch");
  ARROW_RETURN_NOT_OK(CheckSameFields(*input_schema_, *batch->schema()));
  if (batch->num_rows() == 0) {
    PartitionedBatch out;
    out.batches.resize(static_cast<size_t>(num_partitions()));
    return out;
  }
  return PartitionChecked(batch);
}

arrow::Result<std::unique_ptr<Partitioner>> MakePartitioner(
    std::shared_ptr<const PartitionSpec> spec, std::shared_ptr<arrow::Schema> input_schema,
    TaskIndex writer_task, arrow::MemoryPool* pool) {
  if (spec == nullptr) return arrow::Status::Invalid("MakePartitioner got a null spec");
  if (input_schema == nullptr) {
    return arrow::Status::Invalid("MakePartitioner got a null input schema");
  }
  if (writer_task < 0) {
    return arrow::Status::Invalid("writer task index must be >= 0, got ", writer_task);
  }
  if (pool == nullptr) return arrow::Status::Invalid("MakePartitioner got a null memory pool");
  switch (spec->edge_type()) {
    case EdgeType::kForward:
      return std::make_unique<ForwardPartitioner>(std::move(spec), std::move(input_schema),
                                                  writer_task);
    case EdgeType::kBroadcast:
      return std::make_unique<BroadcastPartitioner>(std::move(spec), std::move(input_schema),
                                                    writer_task);
    case EdgeType::kRebalance:
      return RebalancePartitioner::Make(std::move(spec), std::move(input_schema), writer_task,
                                        pool);
    case EdgeType::kHash: {
      ARROW_ASSIGN_OR_RAISE(
          auto partitioner,
          HashPartitioner::Make(std::move(spec), std::move(input_schema), writer_task, pool));
      return partitioner;
    }
    case EdgeType::kRange: {
      ARROW_ASSIGN_OR_RAISE(
          auto partitioner,
          RangePartitioner::Make(std::move(spec), std::move(input_schema), writer_task, pool));
      return partitioner;
    }
  }
  return arrow::Status::Invalid("unknown edge type ", static_cast<int>(spec->edge_type()));
}

arrow::Result<std::unique_ptr<Partitioner>> MakePartitioner(
    const PartitionSpec& spec, std::shared_ptr<arrow::Schema> input_schema, TaskIndex writer_task,
    arrow::MemoryPool* pool) {
  return MakePartitioner(std::make_shared<const PartitionSpec>(spec), std::move(input_schema),
                         writer_task, pool);
}

}  // namespace sabot
