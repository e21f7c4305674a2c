#include "sabot/shuffle/shuffle_descriptor.h"

#include <cstring>
#include <string>
#include <string_view>

#include <arrow/io/memory.h>
#include <arrow/ipc/reader.h>
#include <arrow/ipc/writer.h>
#include <arrow/type.h>

namespace sabot {

namespace {

constexpr uint32_t kMagic = 0x44534253;  // "SBSD" little-endian
constexpr uint32_t kVersion = 1;

// Appends little-endian integers and length-prefixed byte strings.
class ByteWriter {
 public:
  void U32(uint32_t v) { Raw(&v, sizeof(v)); }
  void I64(int64_t v) { Raw(&v, sizeof(v)); }
  void Bytes(std::string_view bytes) {
    U32(static_cast<uint32_t>(bytes.size()));
    Raw(bytes.data(), bytes.size());
  }
  std::string Take() { return std::move(out_); }

 private:
  void Raw(const void* data, size_t size) { out_.append(static_cast<const char*>(data), size); }
  std::string out_;
};

// Reads what ByteWriter wrote, failing cleanly on truncation.
class ByteReader {
 public:
  explicit ByteReader(std::string_view in) : in_(in) {}

  arrow::Result<uint32_t> U32() {
    uint32_t v = 0;
    ARROW_RETURN_NOT_OK(Raw(&v, sizeof(v)));
    return v;
  }
  arrow::Result<int64_t> I64() {
    int64_t v = 0;
    ARROW_RETURN_NOT_OK(Raw(&v, sizeof(v)));
    return v;
  }
  arrow::Result<std::string_view> Bytes() {
    ARROW_ASSIGN_OR_RAISE(uint32_t size, U32());
    if (size > in_.size() - pos_) return Truncated();
    std::string_view out = in_.substr(pos_, size);
    pos_ += size;
    return out;
  }
  bool at_end() const { return pos_ == in_.size(); }

 private:
  arrow::Status Raw(void* out, size_t size) {
    if (size > in_.size() - pos_) return Truncated();
    std::memcpy(out, in_.data() + pos_, size);
    pos_ += size;
    return arrow::Status::OK();
  }
  arrow::Status Truncated() const {
    return arrow::Status::Invalid("shuffle descriptor is truncated at byte ", pos_, " of ",
                                  in_.size());
  }

  std::string_view in_;
  size_t pos_ = 0;
};

arrow::Result<int32_t> CheckedInt32(int64_t v, const char* what) {
  if (v < INT32_MIN || v > INT32_MAX) {
    return arrow::Status::Invalid("shuffle descriptor field ", what, " out of range: ", v);
  }
  return static_cast<int32_t>(v);
}

}  // namespace

arrow::Status ShuffleDescriptor::Validate() const {
  ARROW_RETURN_NOT_OK(ValidateId(shuffle_id, "shuffle id"));
  if (spec == nullptr) return arrow::Status::Invalid("shuffle '", shuffle_id, "' has no spec");
  if (schema == nullptr) {
    return arrow::Status::Invalid("shuffle '", shuffle_id, "' has no schema");
  }
  ARROW_RETURN_NOT_OK(ValidateCount(num_writers, "number of writer tasks"));
  if (spec->edge_type() == EdgeType::kForward && num_writers != spec->num_partitions()) {
    return arrow::Status::Invalid("shuffle '", shuffle_id, "': a FORWARD edge needs as many ",
                                  "writers as partitions, got ", num_writers, " writers and ",
                                  spec->num_partitions(), " partitions");
  }
  for (const auto& key : spec->key_columns()) {
    if (schema->GetFieldIndex(key) < 0) {
      return arrow::Status::Invalid("shuffle '", shuffle_id, "': key column '", key,
                                    "' is not in the schema ", schema->ToString());
    }
  }
  ARROW_RETURN_NOT_OK(options.Validate());
  return arrow::Status::OK();
}

arrow::Status ShuffleDescriptor::CheckPartition(PartitionId partition_id) const {
  if (partition_id < 0 || partition_id >= num_partitions()) {
    return arrow::Status::IndexError("partition ", partition_id,
                                     " is out of range: the shuffle has ", num_partitions(),
                                     " partitions");
  }
  return arrow::Status::OK();
}

arrow::Status ShuffleDescriptor::CheckWriterTask(TaskIndex writer_task) const {
  if (writer_task < 0 || writer_task >= num_writers) {
    return arrow::Status::IndexError("writer task ", writer_task,
                                     " is out of range: the shuffle has ", num_writers,
                                     " writers");
  }
  return arrow::Status::OK();
}

arrow::Result<std::shared_ptr<arrow::Buffer>> ShuffleDescriptor::Serialize() const {
  ARROW_RETURN_NOT_OK(Validate());
  ARROW_ASSIGN_OR_RAISE(auto spec_bytes, spec->Serialize());
  ARROW_ASSIGN_OR_RAISE(auto schema_bytes, arrow::ipc::SerializeSchema(*schema));
  ByteWriter out;
  out.U32(kMagic);
  out.U32(kVersion);
  out.Bytes(shuffle_id);
  out.Bytes(std::string_view(reinterpret_cast<const char*>(spec_bytes->data()),
                             static_cast<size_t>(spec_bytes->size())));
  out.Bytes(std::string_view(reinterpret_cast<const char*>(schema_bytes->data()),
                             static_cast<size_t>(schema_bytes->size())));
  out.I64(num_writers);
  out.I64(static_cast<int64_t>(options.mode));
  out.I64(static_cast<int64_t>(options.compression));
  out.I64(options.target_block_rows);
  out.I64(options.target_block_bytes);
  out.I64(options.buffer_timeout.count());
  out.I64(options.exclusive_credits);
  out.I64(options.floating_credits);
  out.I64(options.timeout.count());
  return arrow::Buffer::FromString(out.Take());
}

arrow::Result<ShuffleDescriptor> ShuffleDescriptor::Deserialize(const arrow::Buffer& bytes) {
  ByteReader in(std::string_view(reinterpret_cast<const char*>(bytes.data()),
                                 static_cast<size_t>(bytes.size())));
  ARROW_ASSIGN_OR_RAISE(uint32_t magic, in.U32());
  if (magic != kMagic) return arrow::Status::Invalid("not a shuffle descriptor (bad magic)");
  ARROW_ASSIGN_OR_RAISE(uint32_t version, in.U32());
  if (version != kVersion) {
    return arrow::Status::Invalid("shuffle descriptor version ", version,
                                  " is not supported (expected ", kVersion, ")");
  }
  ShuffleDescriptor out;
  ARROW_ASSIGN_OR_RAISE(std::string_view id, in.Bytes());
  out.shuffle_id = std::string(id);
  ARROW_ASSIGN_OR_RAISE(std::string_view spec_bytes, in.Bytes());
  ARROW_ASSIGN_OR_RAISE(out.spec, PartitionSpec::Deserialize(arrow::Buffer(spec_bytes)));
  ARROW_ASSIGN_OR_RAISE(std::string_view schema_bytes, in.Bytes());
  arrow::io::BufferReader schema_reader(std::make_shared<arrow::Buffer>(schema_bytes));
  arrow::ipc::DictionaryMemo memo;
  ARROW_ASSIGN_OR_RAISE(out.schema, arrow::ipc::ReadSchema(&schema_reader, &memo));
  int64_t values[9] = {};
  for (int64_t& v : values) {
    ARROW_ASSIGN_OR_RAISE(v, in.I64());
  }
  if (!in.at_end()) return arrow::Status::Invalid("shuffle descriptor has trailing bytes");
  ARROW_ASSIGN_OR_RAISE(out.num_writers, CheckedInt32(values[0], "num_writers"));
  if (values[1] != static_cast<int64_t>(ShuffleMode::kPipelined) &&
      values[1] != static_cast<int64_t>(ShuffleMode::kBlocking)) {
    return arrow::Status::Invalid("shuffle descriptor has unknown mode ", values[1]);
  }
  out.options.mode = static_cast<ShuffleMode>(values[1]);
  // Checked while still an integer: an enum holding a value outside its enumerators is
  // undefined behaviour the moment it is read.
  ARROW_ASSIGN_OR_RAISE(out.options.compression, ShuffleCompressionFromCode(values[2]));
  out.options.target_block_rows = values[3];
  out.options.target_block_bytes = values[4];
  out.options.buffer_timeout = std::chrono::milliseconds(values[5]);
  ARROW_ASSIGN_OR_RAISE(out.options.exclusive_credits,
                        CheckedInt32(values[6], "exclusive_credits"));
  ARROW_ASSIGN_OR_RAISE(out.options.floating_credits, CheckedInt32(values[7], "floating_credits"));
  out.options.timeout = std::chrono::milliseconds(values[8]);
  ARROW_RETURN_NOT_OK(out.Validate());
  return out;
}

}  // namespace sabot
