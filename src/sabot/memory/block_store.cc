#include "sabot/memory/block_store.h"

#include <deque>

#include "sabot/common/error_detail.h"

namespace sabot {

// The fields after the constant ones are guarded by the store's mutex, except `writer`, which
// belongs to the thread that set `spilling` (or, while no one spills, to whoever holds the
// mutex).
struct BlockStore::Stream {
  StreamKey key;
  std::shared_ptr<arrow::Schema> schema;
  std::unique_ptr<BlockEncoder> encoder;
  std::shared_ptr<ShuffleMemoryCounters> counters;  // null without metrics

  std::deque<SealedBlock> memory;  // blocks spilled.size() ... spilled.size() + memory.size() - 1
  int64_t memory_bytes = 0;
  std::vector<SpillBlockLocation> spilled;  // blocks 0 ... spilled.size() - 1
  int64_t spilled_bytes = 0;
  bool spilling = false;
  bool finished = false;
  arrow::Status failure;  // set by Abort: what readers get after the last block
  bool released = false;
  int64_t rows_total = 0;  // rows of every block appended
  std::unique_ptr<SpillFileWriter> writer;

  ShuffleErrorContext context() const {
    return ShuffleErrorContext{key.shuffle_id, key.partition_id, key.writer_task};
  }
  void CountMemory(int64_t bytes, int64_t rows) {
    memory_bytes += bytes;
    if (counters == nullptr) return;
    counters->bytes_buffered.fetch_add(bytes, std::memory_order_relaxed);
    counters->rows_buffered.fetch_add(rows, std::memory_order_relaxed);
  }
  void CountFileOpen(int64_t delta) {
    if (counters != nullptr) counters->spill_files_open.fetch_add(delta, std::memory_order_relaxed);
  }
};

namespace {

void CloseWriter(std::unique_ptr<SpillFileWriter> writer) {
  if (writer == nullptr) return;
  // Its error, if any, was already reported to the Append that hit it.
  (void)writer->Close();
}

}  // namespace

arrow::Result<std::unique_ptr<BlockStore>> BlockStore::Make(BlockStoreOptions options,
                                                            BudgetedMemoryPool* pool,
                                                            MemoryMetrics* metrics) {
  if (pool == nullptr) return arrow::Status::Invalid("block store needs the budget pool");
  if (options.read_timeout.count() < 0) {
    return arrow::Status::Invalid("block store read timeout must not be negative");
  }
  std::unique_ptr<BlockStore> store(new BlockStore());
  ARROW_ASSIGN_OR_RAISE(store->spill_, SpillManager::Make(options.spill, pool));
  store->options_ = std::move(options);
  store->pool_ = pool;
  store->metrics_ = metrics;
  return store;
}

BlockStore::~BlockStore() {
  std::vector<ShuffleId> shuffles;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& [key, stream] : streams_) {
      if (shuffles.empty() || shuffles.back() != key.shuffle_id) shuffles.push_back(key.shuffle_id);
    }
  }
  for (const auto& id : shuffles) (void)Release(id);
}

arrow::Result<std::shared_ptr<BlockStore::Stream>> BlockStore::FindLocked(
    const StreamKey& key) const {
  auto it = streams_.find(key);
  if (it == streams_.end()) {
    return WithShuffleContext(arrow::Status::KeyError("no such stream in the block store (attempt ",
                                                      key.writer_attempt, ")"),
                              {key.shuffle_id, key.partition_id, key.writer_task});
  }
  return it->second;
}

arrow::Status BlockStore::AddStream(const StreamKey& key, std::shared_ptr<arrow::Schema> schema) {
  ARROW_RETURN_NOT_OK(spill_->PathFor(key).status());
  auto stream = std::make_shared<Stream>();
  stream->key = key;
  ARROW_ASSIGN_OR_RAISE(stream->encoder, BlockEncoder::Make(schema, options_.codec, pool_));
  stream->schema = std::move(schema);
  if (metrics_ != nullptr) stream->counters = metrics_->ForShuffle(key.shuffle_id);
  std::lock_guard<std::mutex> lock(mutex_);
  auto [it, inserted] = streams_.emplace(key, std::move(stream));
  if (!inserted) {
    return WithShuffleContext(arrow::Status::AlreadyExists("stream already in the block store"),
                              it->second->context());
  }
  return arrow::Status::OK();
}

arrow::Status BlockStore::Append(const StreamKey& key, SealedBlock block) {
  if (!block.encoded() && block.batch == nullptr && !block.is_event()) {
    return arrow::Status::Invalid("block has neither bytes nor batch, and is no event");
  }
  const int64_t bytes = block.size_bytes();
  const int64_t rows = block.num_rows;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    ARROW_ASSIGN_OR_RAISE(auto stream, FindLocked(key));
    if (stream->finished) {
      return WithShuffleContext(arrow::Status::Invalid("Append after Finish"), stream->context());
    }
    stream->memory.push_back(std::move(block));
    stream->rows_total += rows;
    stream->CountMemory(bytes, rows);
  }
  changed_.notify_all();
  return SpillIfNeeded();
}

arrow::Status BlockStore::Finish(const StreamKey& key) {
  std::unique_ptr<SpillFileWriter> idle_writer;
  std::shared_ptr<Stream> stream;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    ARROW_ASSIGN_OR_RAISE(stream, FindLocked(key));
    stream->finished = true;
    // A finished stream keeps no file open: if its remaining blocks spill later, the file is
    // reopened for appending.
    if (!stream->spilling) idle_writer = std::move(stream->writer);
  }
  changed_.notify_all();
  if (idle_writer != nullptr) {
    CloseWriter(std::move(idle_writer));
    stream->CountFileOpen(-1);
  }
  return arrow::Status::OK();
}

arrow::Status BlockStore::Abort(const StreamKey& key, const arrow::Status& cause) {
  if (cause.ok()) return arrow::Status::Invalid("Abort needs an error as its cause");
  {
    std::lock_guard<std::mutex> lock(mutex_);
    ARROW_ASSIGN_OR_RAISE(auto stream, FindLocked(key));
    if (stream->failure.ok()) stream->failure = cause;
  }
  return Finish(key);
}

arrow::Result<BlockStreamStats> BlockStore::StreamStats(const StreamKey& key) const {
  std::lock_guard<std::mutex> lock(mutex_);
  ARROW_ASSIGN_OR_RAISE(auto stream, FindLocked(key));
  BlockStreamStats stats;
  stats.blocks = static_cast<int64_t>(stream->spilled.size() + stream->memory.size());
  stats.rows = stream->rows_total;
  stats.bytes = stream->memory_bytes + stream->spilled_bytes;
  stats.finished = stream->finished;
  return stats;
}

std::vector<StreamKey> BlockStore::ListStreams(const ShuffleId& shuffle_id) const {
  std::vector<StreamKey> keys;
  std::lock_guard<std::mutex> lock(mutex_);
  for (const auto& [key, stream] : streams_) {
    if (key.shuffle_id == shuffle_id) keys.push_back(key);
  }
  return keys;
}

arrow::Status BlockStore::Release(const ShuffleId& shuffle_id) {
  std::vector<std::shared_ptr<Stream>> released;
  std::vector<std::deque<SealedBlock>> dropped;
  std::vector<std::pair<std::shared_ptr<Stream>, std::unique_ptr<SpillFileWriter>>> writers;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto it = streams_.begin(); it != streams_.end();) {
      if (it->first.shuffle_id != shuffle_id) {
        ++it;
        continue;
      }
      Stream& stream = *it->second;
      stream.released = true;
      int64_t rows = 0;
      for (const auto& block : stream.memory) rows += block.num_rows;
      stream.CountMemory(-stream.memory_bytes, -rows);
      dropped.push_back(std::move(stream.memory));
      stream.memory.clear();
      if (!stream.spilling && stream.writer != nullptr) {
        writers.emplace_back(it->second, std::move(stream.writer));
      }
      released.push_back(it->second);
      it = streams_.erase(it);
    }
  }
  changed_.notify_all();
  for (auto& [stream, writer] : writers) {
    CloseWriter(std::move(writer));
    stream->CountFileOpen(-1);
  }
  dropped.clear();  // frees the memory, outside the lock
  arrow::Status st = spill_->DeleteShuffle(shuffle_id);
  if (metrics_ != nullptr) metrics_->Forget(shuffle_id);
  return st;
}

std::shared_ptr<BlockStore::Stream> BlockStore::LargestLocked() const {
  std::shared_ptr<Stream> largest;
  for (const auto& [key, stream] : streams_) {
    if (stream->spilling || stream->memory.empty()) continue;
    if (largest == nullptr || stream->memory_bytes > largest->memory_bytes) largest = stream;
  }
  return largest;
}

template <typename Predicate>
arrow::Status BlockStore::SpillLargestWhile(Predicate&& more) {
  while (more()) {
    std::shared_ptr<Stream> victim;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      victim = LargestLocked();
    }
    if (victim == nullptr) break;
    ARROW_RETURN_NOT_OK(SpillStream(victim));
  }
  return arrow::Status::OK();
}

arrow::Status BlockStore::SpillIfNeeded() {
  if (!spill_->AboveHighWatermark()) return arrow::Status::OK();
  return SpillLargestWhile([&] { return !spill_->AtOrBelowLowWatermark(); });
}

arrow::Status BlockStore::Reclaim(int64_t bytes) {
  return SpillLargestWhile(
      [&] { return pool_->available_bytes() < bytes || !spill_->AtOrBelowLowWatermark(); });
}

arrow::Status BlockStore::SpillAll() {
  std::vector<std::shared_ptr<Stream>> all;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& [key, stream] : streams_) all.push_back(stream);
  }
  for (const auto& stream : all) ARROW_RETURN_NOT_OK(SpillStream(stream));
  return arrow::Status::OK();
}

arrow::Status BlockStore::SpillStream(const std::shared_ptr<Stream>& stream) {
  std::vector<SealedBlock> blocks;
  std::unique_ptr<SpillFileWriter> writer;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stream->spilling || stream->released || stream->memory.empty()) {
      return arrow::Status::OK();
    }
    stream->spilling = true;
    blocks.assign(stream->memory.begin(), stream->memory.end());
    writer = std::move(stream->writer);
  }

  // Spill I/O, without the lock.
  arrow::Status st;
  if (writer == nullptr) {
    auto opened = spill_->OpenWriter(stream->key, stream->encoder->schema_message());
    if (opened.ok()) {
      writer = std::move(*opened);
      stream->CountFileOpen(1);
    } else {
      st = opened.status();
    }
  }
  std::vector<SpillBlockLocation> locations;
  int64_t bytes_written = 0;
  for (size_t i = 0; st.ok() && i < blocks.size(); ++i) {
    auto location = writer->Append(blocks[i], *stream->encoder);
    if (!location.ok()) {
      st = location.status();
      break;
    }
    bytes_written += location->length;
    locations.push_back(*location);
  }
  if (st.ok() && writer != nullptr) {
    st = writer->Flush();
    if (!st.ok()) {
      locations.clear();
      bytes_written = 0;
    }
  }
  bool close_writer = !st.ok();

  std::deque<SealedBlock> moved;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stream->spilling = false;
    if (!stream->released) {
      for (const auto& location : locations) {
        SealedBlock& front = stream->memory.front();
        stream->CountMemory(-front.size_bytes(), -front.num_rows);
        moved.push_back(std::move(front));
        stream->memory.pop_front();
        stream->spilled.push_back(location);
        stream->spilled_bytes += location.length;
      }
    }
    if (stream->released || stream->finished) close_writer = true;
    if (!close_writer) stream->writer = std::move(writer);
  }
  if (close_writer && writer != nullptr) {
    CloseWriter(std::move(writer));
    stream->CountFileOpen(-1);
  }
  if (stream->counters != nullptr && !locations.empty()) {
    stream->counters->bytes_spilled.fetch_add(bytes_written, std::memory_order_relaxed);
    stream->counters->blocks_spilled.fetch_add(static_cast<int64_t>(locations.size()),
                                               std::memory_order_relaxed);
  }
  moved.clear();
  blocks.clear();  // the last references to the spilled blocks: their memory returns to the pool
  return WithShuffleContext(st, stream->context());
}

BlockStore::Stats BlockStore::stats() const {
  Stats s;
  std::lock_guard<std::mutex> lock(mutex_);
  for (const auto& [key, stream] : streams_) {
    ++s.streams;
    s.blocks_in_memory += static_cast<int64_t>(stream->memory.size());
    s.bytes_in_memory += stream->memory_bytes;
    s.blocks_on_disk += static_cast<int64_t>(stream->spilled.size());
    s.bytes_on_disk += stream->spilled_bytes;
  }
  return s;
}

arrow::Result<std::unique_ptr<BlockStreamReader>> BlockStore::OpenReader(const StreamKey& key) {
  std::lock_guard<std::mutex> lock(mutex_);
  ARROW_ASSIGN_OR_RAISE(auto stream, FindLocked(key));
  return std::unique_ptr<BlockStreamReader>(new BlockStreamReader(this, std::move(stream)));
}

BlockStreamReader::BlockStreamReader(BlockStore* store, std::shared_ptr<BlockStore::Stream> stream)
    : store_(store), stream_(std::move(stream)) {}

BlockStreamReader::~BlockStreamReader() = default;

const StreamKey& BlockStreamReader::key() const { return stream_->key; }
const std::shared_ptr<arrow::Schema>& BlockStreamReader::schema() const {
  return stream_->schema;
}
const std::shared_ptr<arrow::Buffer>& BlockStreamReader::schema_message() const {
  return stream_->encoder->schema_message();
}

arrow::Result<std::optional<SealedBlock>> BlockStreamReader::Next() {
  std::optional<SpillBlockLocation> location;
  SealedBlock block;
  {
    std::unique_lock<std::mutex> lock(store_->mutex_);
    const auto deadline = std::chrono::steady_clock::now() + store_->options_.read_timeout;
    BlockStore::Stream& stream = *stream_;
    while (true) {
      if (cancelled_) {
        return WithShuffleContext(arrow::Status::Cancelled("the reader was cancelled"),
                                  stream.context());
      }
      if (stream.released) {
        return WithShuffleContext(arrow::Status::Invalid("the stream was released"),
                                  stream.context());
      }
      const auto total = static_cast<int64_t>(stream.spilled.size() + stream.memory.size());
      if (next_ < total) break;
      if (stream.finished) {
        if (!stream.failure.ok()) return WithShuffleContext(stream.failure, stream.context());
        return std::nullopt;
      }
      if (store_->changed_.wait_until(lock, deadline) == std::cv_status::timeout) {
        return WithShuffleContext(
            arrow::Status::IOError("timed out after ", store_->options_.read_timeout.count(),
                                   " ms waiting for the next block of an unfinished stream"),
            stream.context());
      }
    }
    const auto spilled = static_cast<int64_t>(stream.spilled.size());
    if (next_ < spilled) {
      location = stream.spilled[static_cast<size_t>(next_)];
    } else {
      block = stream.memory[static_cast<size_t>(next_ - spilled)];
    }
  }
  if (location) {
    auto read = ReadSpilled(*location);
    if (!read.ok()) return WithShuffleContext(read.status(), stream_->context());
    block = std::move(*read);
  }
  ++next_;
  return block;
}

void BlockStreamReader::Cancel() {
  {
    std::lock_guard<std::mutex> lock(store_->mutex_);
    cancelled_ = true;
  }
  store_->changed_.notify_all();
}

arrow::Result<SealedBlock> BlockStreamReader::ReadSpilled(const SpillBlockLocation& location) {
  if (file_ == nullptr) {
    ARROW_ASSIGN_OR_RAISE(file_, store_->spill_->OpenReader(stream_->key));
  }
  auto read = file_->Read(location, store_->pool_);
  if (read.status().IsOutOfMemory()) {
    // Make room by spilling (this reader holds no lock), then try once more.
    ARROW_RETURN_NOT_OK(store_->SpillIfNeeded());
    read = file_->Read(location, store_->pool_);
  }
  ARROW_ASSIGN_OR_RAISE(SealedBlock block, std::move(read));
  if (stream_->counters != nullptr) {
    stream_->counters->bytes_read_back.fetch_add(location.length, std::memory_order_relaxed);
    stream_->counters->blocks_read_back.fetch_add(1, std::memory_order_relaxed);
  }
  return block;
}

}  // namespace sabot
