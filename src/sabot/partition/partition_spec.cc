#include "sabot/partition/partition_spec.h"

#include <charconv>
#include <set>
#include <sstream>

#include <arrow/io/memory.h>
#include <arrow/ipc/reader.h>
#include <arrow/ipc/writer.h>
#include <arrow/util/key_value_metadata.h>

#include "sabot/common/ids.h"
#include "sabot/partition/range_partitioner.h"

namespace sabot {

namespace {

constexpr const char* kVersionKey = "sabot.spec.version";
constexpr const char* kEdgeTypeKey = "sabot.spec.edge_type";
constexpr const char* kNumPartitionsKey = "sabot.spec.num_partitions";
constexpr const char* kNumKeysKey = "sabot.spec.num_keys";
constexpr const char* kKeyPrefix = "sabot.spec.key.";
constexpr const char* kNullPlacementKey = "sabot.spec.null_placement";
constexpr const char* kFormatVersion = "1";

std::string_view NullPlacementName(arrow::compute::NullPlacement placement) {
  return placement == arrow::compute::NullPlacement::AtStart ? "at_start" : "at_end";
}

arrow::Result<int64_t> ParseInt(const std::string& text, const char* what) {
  int64_t value = 0;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (ec != std::errc() || ptr != end || text.empty()) {
    return arrow::Status::Invalid("serialized PartitionSpec has a malformed ", what, ": '", text,
                                  "'");
  }
  return value;
}

arrow::Result<std::string> GetMetadata(const arrow::KeyValueMetadata& metadata,
                                       const std::string& key) {
  auto value = metadata.Get(key);
  if (!value.ok()) {
    return arrow::Status::Invalid("serialized PartitionSpec lacks metadata key '", key, "'");
  }
  return value.MoveValueUnsafe();
}

}  // namespace

std::string_view EdgeTypeName(EdgeType type) {
  switch (type) {
    case EdgeType::kForward:
      return "FORWARD";
    case EdgeType::kHash:
      return "HASH";
    case EdgeType::kBroadcast:
      return "BROADCAST";
    case EdgeType::kRebalance:
      return "REBALANCE";
    case EdgeType::kRange:
      return "RANGE";
  }
  return "UNKNOWN";
}

arrow::Result<EdgeType> ParseEdgeType(std::string_view name) {
  for (EdgeType type : {EdgeType::kForward, EdgeType::kHash, EdgeType::kBroadcast,
                        EdgeType::kRebalance, EdgeType::kRange}) {
    if (EdgeTypeName(type) == name) return type;
  }
  return arrow::Status::Invalid("unknown edge type '", name,
                                "' (expected FORWARD, HASH, BROADCAST, REBALANCE or RANGE)");
}

arrow::Result<std::shared_ptr<const PartitionSpec>> PartitionSpec::Make(
    EdgeType type, std::vector<std::string> key_columns, int64_t num_partitions,
    std::shared_ptr<arrow::RecordBatch> boundaries, arrow::compute::NullPlacement null_placement) {
  const std::string_view name = EdgeTypeName(type);
  if (name == "UNKNOWN") {
    return arrow::Status::Invalid("unknown edge type ", static_cast<int>(type));
  }
  ARROW_RETURN_NOT_OK(ValidateCount(num_partitions, std::string(name) + " number of partitions"));
  const bool keyed = type == EdgeType::kHash || type == EdgeType::kRange;
  if (keyed && key_columns.empty()) {
    return arrow::Status::Invalid(name, " partitioning needs at least one key column");
  }
  if (!keyed && !key_columns.empty()) {
    return arrow::Status::Invalid(name, " partitioning takes no key columns, got '", key_columns[0],
                                  "'", key_columns.size() > 1 ? " and more" : "");
  }
  std::set<std::string> seen;
  for (const std::string& key : key_columns) {
    if (key.empty()) return arrow::Status::Invalid(name, " key column name is empty");
    if (!seen.insert(key).second) {
      return arrow::Status::Invalid(name, " key column '", key, "' is listed twice");
    }
  }
  if (type == EdgeType::kRange) {
    if (boundaries == nullptr) {
      return arrow::Status::Invalid(
          "RANGE partitioning needs boundaries (a batch of the key columns with "
          "num_partitions - 1 sorted rows)");
    }
    if (boundaries->num_rows() != num_partitions - 1) {
      return arrow::Status::Invalid("RANGE partitioning into ", num_partitions,
                                    " partitions needs ", num_partitions - 1,
                                    " boundary rows, got ", boundaries->num_rows());
    }
    ARROW_RETURN_NOT_OK(boundaries->Validate());
    ARROW_RETURN_NOT_OK(ValidateRangeBoundaries(*boundaries, key_columns));
  } else if (boundaries != nullptr) {
    return arrow::Status::Invalid(name, " partitioning takes no range boundaries");
  }
  std::shared_ptr<PartitionSpec> spec(new PartitionSpec());
  spec->edge_type_ = type;
  spec->key_columns_ = std::move(key_columns);
  spec->num_partitions_ = static_cast<int32_t>(num_partitions);
  spec->boundaries_ = std::move(boundaries);
  spec->null_placement_ = null_placement;
  return spec;
}

arrow::Result<std::shared_ptr<const PartitionSpec>> PartitionSpec::Forward(int64_t num_partitions) {
  return Make(EdgeType::kForward, {}, num_partitions);
}

arrow::Result<std::shared_ptr<const PartitionSpec>> PartitionSpec::Broadcast(
    int64_t num_partitions) {
  return Make(EdgeType::kBroadcast, {}, num_partitions);
}

arrow::Result<std::shared_ptr<const PartitionSpec>> PartitionSpec::Rebalance(
    int64_t num_partitions) {
  return Make(EdgeType::kRebalance, {}, num_partitions);
}

arrow::Result<std::shared_ptr<const PartitionSpec>> PartitionSpec::Hash(
    std::vector<std::string> key_columns, int64_t num_partitions) {
  return Make(EdgeType::kHash, std::move(key_columns), num_partitions);
}

arrow::Result<std::shared_ptr<const PartitionSpec>> PartitionSpec::Range(
    std::shared_ptr<arrow::RecordBatch> boundaries, arrow::compute::NullPlacement null_placement) {
  if (boundaries == nullptr) {
    return arrow::Status::Invalid("RANGE partitioning needs boundaries, got none");
  }
  std::vector<std::string> keys = boundaries->schema()->field_names();
  const int64_t num_partitions = boundaries->num_rows() + 1;
  return Make(EdgeType::kRange, std::move(keys), num_partitions, std::move(boundaries),
              null_placement);
}

arrow::Result<std::shared_ptr<arrow::Buffer>> PartitionSpec::Serialize() const {
  auto metadata = std::make_shared<arrow::KeyValueMetadata>();
  metadata->Append(kVersionKey, kFormatVersion);
  metadata->Append(kEdgeTypeKey, std::string(EdgeTypeName(edge_type_)));
  metadata->Append(kNumPartitionsKey, std::to_string(num_partitions_));
  metadata->Append(kNumKeysKey, std::to_string(key_columns_.size()));
  for (size_t i = 0; i < key_columns_.size(); ++i) {
    metadata->Append(kKeyPrefix + std::to_string(i), key_columns_[i]);
  }
  metadata->Append(kNullPlacementKey, std::string(NullPlacementName(null_placement_)));

  std::shared_ptr<arrow::Schema> schema = boundaries_
                                              ? boundaries_->schema()->WithMetadata(metadata)
                                              : arrow::schema(arrow::FieldVector{}, metadata);
  ARROW_ASSIGN_OR_RAISE(auto sink, arrow::io::BufferOutputStream::Create());
  ARROW_ASSIGN_OR_RAISE(auto writer, arrow::ipc::MakeStreamWriter(sink, schema));
  if (boundaries_) {
    ARROW_ASSIGN_OR_RAISE(auto batch, boundaries_->ReplaceSchema(schema));
    ARROW_RETURN_NOT_OK(writer->WriteRecordBatch(*batch));
  }
  ARROW_RETURN_NOT_OK(writer->Close());
  return sink->Finish();
}

arrow::Result<std::shared_ptr<const PartitionSpec>> PartitionSpec::Deserialize(
    const arrow::Buffer& bytes) {
  // The spec keeps its boundaries, which the IPC reader would leave pointing into `bytes`:
  // read from an owned copy, so the spec never depends on the caller's buffer.
  auto input =
      std::make_shared<arrow::io::BufferReader>(arrow::Buffer::FromString(bytes.ToString()));
  // The bytes come from the network: buffers the IPC metadata places at odd offsets are copied
  // to aligned memory (reading an int64 boundary from an odd address is undefined behaviour;
  // found by fuzzing), and each batch is validated in full before anything reads its values.
  auto options = arrow::ipc::IpcReadOptions::Defaults();
  options.ensure_alignment = arrow::ipc::Alignment::kDataTypeSpecificAlignment;
  auto reader_result = arrow::ipc::RecordBatchStreamReader::Open(input, options);
  if (!reader_result.ok()) {
    return arrow::Status::Invalid("bytes are not a serialized PartitionSpec (no Arrow IPC stream: ",
                                  reader_result.status().message(), ")");
  }
  auto reader = reader_result.MoveValueUnsafe();
  const std::shared_ptr<arrow::Schema> schema = reader->schema();
  if (schema->metadata() == nullptr) {
    return arrow::Status::Invalid("bytes are not a serialized PartitionSpec (no spec metadata)");
  }
  const arrow::KeyValueMetadata& metadata = *schema->metadata();
  ARROW_ASSIGN_OR_RAISE(std::string version, GetMetadata(metadata, kVersionKey));
  if (version != kFormatVersion) {
    return arrow::Status::Invalid("serialized PartitionSpec has format version '", version,
                                  "'; this build reads version ", kFormatVersion);
  }
  ARROW_ASSIGN_OR_RAISE(std::string type_name, GetMetadata(metadata, kEdgeTypeKey));
  ARROW_ASSIGN_OR_RAISE(EdgeType type, ParseEdgeType(type_name));
  ARROW_ASSIGN_OR_RAISE(std::string count_text, GetMetadata(metadata, kNumPartitionsKey));
  ARROW_ASSIGN_OR_RAISE(int64_t num_partitions, ParseInt(count_text, "partition count"));
  ARROW_ASSIGN_OR_RAISE(std::string keys_text, GetMetadata(metadata, kNumKeysKey));
  ARROW_ASSIGN_OR_RAISE(int64_t num_keys, ParseInt(keys_text, "key count"));
  if (num_keys < 0 || num_keys > metadata.size()) {
    return arrow::Status::Invalid("serialized PartitionSpec has an impossible key count ",
                                  num_keys);
  }
  std::vector<std::string> keys;
  for (int64_t i = 0; i < num_keys; ++i) {
    ARROW_ASSIGN_OR_RAISE(std::string key, GetMetadata(metadata, kKeyPrefix + std::to_string(i)));
    keys.push_back(std::move(key));
  }
  ARROW_ASSIGN_OR_RAISE(std::string placement_text, GetMetadata(metadata, kNullPlacementKey));
  arrow::compute::NullPlacement placement;
  if (placement_text == "at_end") {
    placement = arrow::compute::NullPlacement::AtEnd;
  } else if (placement_text == "at_start") {
    placement = arrow::compute::NullPlacement::AtStart;
  } else {
    return arrow::Status::Invalid("serialized PartitionSpec has unknown null placement '",
                                  placement_text, "'");
  }

  std::vector<std::shared_ptr<arrow::RecordBatch>> batches;
  while (true) {
    auto next = reader->Next();
    if (!next.ok()) {
      return arrow::Status::Invalid("serialized PartitionSpec has a corrupt boundaries batch: ",
                                    next.status().message());
    }
    if (*next == nullptr) break;
    auto valid = (*next)->ValidateFull();
    if (!valid.ok()) {
      return arrow::Status::Invalid("serialized PartitionSpec has an invalid boundaries batch: ",
                                    valid.message());
    }
    batches.push_back((*next)->ReplaceSchemaMetadata(nullptr));
  }
  std::shared_ptr<arrow::RecordBatch> boundaries;
  if (type == EdgeType::kRange) {
    if (batches.size() != 1) {
      return arrow::Status::Invalid(
          "serialized RANGE PartitionSpec must hold one boundaries "
          "batch, found ",
          batches.size());
    }
    boundaries = std::move(batches[0]);
  } else if (!batches.empty() || schema->num_fields() != 0) {
    return arrow::Status::Invalid("serialized ", type_name,
                                  " PartitionSpec must not hold boundaries");
  }
  return Make(type, std::move(keys), num_partitions, std::move(boundaries), placement);
}

bool PartitionSpec::Equals(const PartitionSpec& other) const {
  if (edge_type_ != other.edge_type_ || key_columns_ != other.key_columns_ ||
      num_partitions_ != other.num_partitions_ || null_placement_ != other.null_placement_) {
    return false;
  }
  if ((boundaries_ == nullptr) != (other.boundaries_ == nullptr)) return false;
  return boundaries_ == nullptr ||
         boundaries_->Equals(*other.boundaries_, /*check_metadata=*/false);
}

std::string PartitionSpec::ToString() const {
  std::ostringstream out;
  out << EdgeTypeName(edge_type_) << "(";
  if (!key_columns_.empty()) {
    out << "keys=[";
    for (size_t i = 0; i < key_columns_.size(); ++i) out << (i ? ", " : "") << key_columns_[i];
    out << "], ";
  }
  out << "partitions=" << num_partitions_;
  if (boundaries_) {
    out << ", boundaries=" << boundaries_->num_rows()
        << ", nulls=" << NullPlacementName(null_placement_);
  }
  out << ")";
  return out.str();
}

}  // namespace sabot
