#include "sabot/memory/sealed_block.h"

#include <arrow/util/byte_size.h>

#include "sabot/memory/crc32c.h"
#include "sabot/memory/row_bytes.h"

namespace sabot {

int64_t SealedBlock::size_bytes() const {
  if (event != nullptr) return event->size();
  if (ipc_bytes != nullptr) return ipc_bytes->size();
  if (batch == nullptr) return 0;
  // Count only the ranges the batch references: a slice of a larger batch holds its parent's
  // buffers alive, but is charged only for what it uses. The walk that allocates nothing first;
  // Arrow's (which builds arrays of the ranges) for the column types it does not cover.
  const int64_t walked = RowBytes::ReferencedBytes(*batch);
  if (walked >= 0) return walked;
  arrow::Result<int64_t> referenced = arrow::util::ReferencedBufferSize(*batch);
  return referenced.ok() ? *referenced : arrow::util::TotalBufferSize(*batch);
}

std::shared_ptr<arrow::Buffer> EmptyEventPayload() {
  static const uint8_t kNothing = 0;
  static const auto* empty = new std::shared_ptr<arrow::Buffer>(
      std::make_shared<arrow::Buffer>(&kNothing, 0));
  return *empty;
}

arrow::Result<SealedBlock> MakeEventBlock(std::shared_ptr<arrow::Buffer> payload) {
  if (payload == nullptr) return arrow::Status::Invalid("an event needs a payload buffer");
  if (payload->size() > kMaxEventBytes) {
    return arrow::Status::Invalid("event of ", payload->size(), " bytes exceeds the limit of ",
                                  kMaxEventBytes, " bytes");
  }
  SealedBlock block;
  block.crc32c = Crc32c(payload->data(), static_cast<size_t>(payload->size()));
  block.event = std::move(payload);
  return block;
}

}  // namespace sabot
