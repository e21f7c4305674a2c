#include "sabot/shuffle/shuffle_service.h"

#include <algorithm>

#include "sabot/common/error_detail.h"

namespace sabot {

arrow::Status ShuffleService::CheckOpen() const {
  std::lock_guard<std::mutex> lock(mutex_);
  if (shut_down_) return arrow::Status::Invalid("the shuffle service has been shut down");
  return arrow::Status::OK();
}

arrow::Status ShuffleService::CreateShuffle(const ShuffleId& shuffle_id, EdgeType type,
                                            int32_t num_partitions, std::vector<std::string> keys,
                                            std::shared_ptr<arrow::Schema> schema,
                                            std::vector<std::string> agents,
                                            ShuffleOptions options,
                                            std::shared_ptr<arrow::RecordBatch> range_boundaries) {
  ARROW_RETURN_NOT_OK(CheckOpen());
  Membership membership;
  if (!agents.empty()) {
    auto it = std::find(agents.begin(), agents.end(), local_location_);
    if (local_location_.empty() || it == agents.end()) {
      return WithShuffleContext(
          arrow::Status::Invalid("this agent ('", local_location_,
                                 "') is not one of the shuffle's ", agents.size(), " agents"),
          {.shuffle_id = shuffle_id});
    }
    membership.self = static_cast<TaskIndex>(it - agents.begin());
    membership.agents = std::move(agents);
  }
  std::shared_ptr<const PartitionSpec> spec;
  if (type == EdgeType::kRange) {
    if (range_boundaries == nullptr) {
      return WithShuffleContext(arrow::Status::Invalid("a RANGE shuffle needs boundaries"),
                                {.shuffle_id = shuffle_id});
    }
    ARROW_ASSIGN_OR_RAISE(spec, PartitionSpec::Range(std::move(range_boundaries)));
    if (spec->num_partitions() != num_partitions) {
      return WithShuffleContext(
          arrow::Status::Invalid(spec->num_partitions() - 1, " RANGE boundaries make ",
                                 spec->num_partitions(), " partitions, not ", num_partitions),
          {.shuffle_id = shuffle_id});
    }
  } else {
    ARROW_ASSIGN_OR_RAISE(spec, PartitionSpec::Make(type, std::move(keys), num_partitions));
  }
  ShuffleDescriptor descriptor;
  descriptor.shuffle_id = shuffle_id;
  descriptor.spec = std::move(spec);
  descriptor.schema = std::move(schema);
  descriptor.num_writers = std::max<int32_t>(1, static_cast<int32_t>(membership.agents.size()));
  descriptor.options = options;
  ARROW_RETURN_NOT_OK(manager_->RegisterShuffle(descriptor));
  for (TaskIndex w = 0; w < static_cast<TaskIndex>(membership.agents.size()); ++w) {
    if (w == membership.self) continue;
    ARROW_RETURN_NOT_OK(manager_->SetWriterLocation(shuffle_id, {w, 0, membership.agents[w]}));
  }
  std::lock_guard<std::mutex> lock(mutex_);
  shuffles_[shuffle_id] = std::move(membership);
  return arrow::Status::OK();
}

arrow::Result<ShuffleService::Membership> ShuffleService::Find(const ShuffleId& shuffle_id) const {
  std::lock_guard<std::mutex> lock(mutex_);
  if (shut_down_) return arrow::Status::Invalid("the shuffle service has been shut down");
  auto it = shuffles_.find(shuffle_id);
  if (it == shuffles_.end()) {
    return WithShuffleContext(
        arrow::Status::KeyError("unknown shuffle: it was not created through this service"),
        {.shuffle_id = shuffle_id});
  }
  return it->second;
}

arrow::Result<std::string> ShuffleService::ReaderAgent(const ShuffleId& shuffle_id,
                                                       PartitionId partition_id) {
  ARROW_ASSIGN_OR_RAISE(Membership membership, Find(shuffle_id));
  ARROW_ASSIGN_OR_RAISE(auto descriptor, manager_->GetShuffle(shuffle_id));
  ARROW_RETURN_NOT_OK(
      WithShuffleContext(descriptor->CheckPartition(partition_id), {.shuffle_id = shuffle_id}));
  if (membership.agents.empty()) return std::string();
  return membership.agents[partition_id % membership.agents.size()];
}

arrow::Status ShuffleService::SendPartition(const ShuffleId& shuffle_id, PartitionId partition_id,
                                            const std::shared_ptr<arrow::RecordBatch>& batch,
                                            const std::string& target_agent) {
  ARROW_ASSIGN_OR_RAISE(Membership membership, Find(shuffle_id));
  if (!target_agent.empty()) {
    ARROW_ASSIGN_OR_RAISE(std::string reader, ReaderAgent(shuffle_id, partition_id));
    if (reader != target_agent) {
      return WithShuffleContext(
          arrow::Status::Invalid("partition ", partition_id, " is read by agent '", reader,
                                 "', not by '", target_agent, "'"),
          {.shuffle_id = shuffle_id, .partition_id = partition_id, .agent = target_agent});
    }
  }
  return manager_->WritePartition(shuffle_id, membership.self, partition_id, batch);
}

arrow::Status ShuffleService::Send(const ShuffleId& shuffle_id,
                                   const std::shared_ptr<arrow::RecordBatch>& batch) {
  ARROW_ASSIGN_OR_RAISE(Membership membership, Find(shuffle_id));
  return manager_->Write(shuffle_id, membership.self, batch);
}

arrow::Status ShuffleService::FinishSending(const ShuffleId& shuffle_id) {
  ARROW_ASSIGN_OR_RAISE(Membership membership, Find(shuffle_id));
  // A writer that sent nothing has not been opened yet: open it so its (empty) streams end too.
  arrow::Status opened = manager_->OpenWriter(shuffle_id, membership.self);
  if (!opened.ok() && !opened.IsAlreadyExists()) return opened;
  return manager_->Finish(shuffle_id, membership.self);
}

arrow::Result<std::unique_ptr<ShuffleReader>> ShuffleService::OpenPartition(
    const ShuffleId& shuffle_id, PartitionId partition_id) {
  ARROW_ASSIGN_OR_RAISE(Membership membership, Find(shuffle_id));
  std::vector<WriterLocation> upstream;
  for (TaskIndex w = 0; w < static_cast<TaskIndex>(membership.agents.size()); ++w) {
    upstream.push_back({w, 0, w == membership.self ? std::string() : membership.agents[w]});
  }
  return manager_->ReadPartition(shuffle_id, partition_id, std::move(upstream));
}

arrow::Result<std::vector<std::shared_ptr<arrow::RecordBatch>>> ShuffleService::ReceivePartition(
    const ShuffleId& shuffle_id, PartitionId partition_id) {
  ARROW_ASSIGN_OR_RAISE(auto reader, OpenPartition(shuffle_id, partition_id));
  return reader->ReadAll();
}

arrow::Status ShuffleService::CloseShuffle(const ShuffleId& shuffle_id) {
  ARROW_RETURN_NOT_OK(Find(shuffle_id).status());
  ARROW_RETURN_NOT_OK(manager_->Release(shuffle_id));
  std::lock_guard<std::mutex> lock(mutex_);
  shuffles_.erase(shuffle_id);
  return arrow::Status::OK();
}

arrow::Result<ShuffleStats> ShuffleService::GetShuffleStats(const ShuffleId& shuffle_id) {
  ARROW_RETURN_NOT_OK(Find(shuffle_id).status());
  return manager_->Stats(shuffle_id);
}

std::vector<ShuffleStats> ShuffleService::GetAllStats() {
  std::vector<ShuffleId> ids;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& [id, membership] : shuffles_) ids.push_back(id);
  }
  std::vector<ShuffleStats> out;
  for (const auto& id : ids) {
    auto stats = manager_->Stats(id);
    if (stats.ok()) out.push_back(std::move(stats).ValueUnsafe());
  }
  return out;
}

arrow::Status ShuffleService::Shutdown() {
  std::map<ShuffleId, Membership> shuffles;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (shut_down_) return arrow::Status::OK();
    shut_down_ = true;
    shuffles.swap(shuffles_);
  }
  arrow::Status first;
  for (const auto& [id, membership] : shuffles) {
    arrow::Status status = manager_->Release(id);
    if (first.ok()) first = status;
  }
  return first;
}

}  // namespace sabot
