#pragma once

#include <cstdint>

#include <arrow/array/data.h>
#include <arrow/buffer.h>
#include <arrow/record_batch.h>

namespace sabot {

// The bytes of a batch's top-level column buffers (validity, offsets, values): the quantity
// Sabot's throughput figures count as "bytes" (writers' bytes written, benchmark rates and their
// ceilings), so figures measured in different places compare.
inline int64_t BatchBufferBytes(const arrow::RecordBatch& batch) {
  int64_t bytes = 0;
  for (int c = 0; c < batch.num_columns(); ++c) {
    for (const auto& buffer : batch.column_data(c)->buffers) {
      if (buffer) bytes += buffer->size();
    }
  }
  return bytes;
}

}  // namespace sabot
