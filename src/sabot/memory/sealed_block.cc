#include "sabot/memory/sealed_block.h"

#include <arrow/util/byte_size.h>

namespace sabot {

int64_t SealedBlock::size_bytes() const {
  if (ipc_bytes != nullptr) return ipc_bytes->size();
  if (batch == nullptr) return 0;
  // Count only the ranges the batch references: a slice of a larger batch holds its parent's
  // buffers alive, but is charged only for what it uses.
  arrow::Result<int64_t> referenced = arrow::util::ReferencedBufferSize(*batch);
  return referenced.ok() ? *referenced : arrow::util::TotalBufferSize(*batch);
}

}  // namespace sabot
