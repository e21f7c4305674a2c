#include "sabot/memory/block_store.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include <arrow/api.h>

#include "sabot/common/error_detail.h"
#include "sabot/memory/faulty_filesystem.h"
#include "sabot/memory/partition_buffer.h"
#include "sabot/memory/test_batches.h"
#include "sabot/memory/test_budget.h"
#include "sabot/testing/assertions.h"

namespace sabot {
namespace {

using testing::TestSchemaKind;

class BlockStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("sabot-block-store-test-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override {
    store_.reset();
    // The store removed its spill root: nothing of it may remain.
    EXPECT_TRUE(std::filesystem::is_empty(dir_)) << "spill files left behind in " << dir_;
    std::filesystem::remove_all(dir_);
  }

  void MakeStore(int64_t budget, SpillOptions spill = {},
                 std::shared_ptr<arrow::fs::FileSystem> fs = nullptr) {
    pool_ = BudgetedMemoryPool::Make(budget).ValueOrDie();
    BlockStoreOptions options;
    options.spill = spill;
    options.spill.directory = dir_.string();
    options.spill.filesystem = fs;
    options.read_timeout = std::chrono::seconds(30);
    store_ = BlockStore::Make(options, pool_.get(), &metrics_).ValueOrDie();
  }

  // Reads every block of `key`, decoded, in order.
  arrow::Result<std::vector<std::shared_ptr<arrow::RecordBatch>>> ReadAll(const StreamKey& key) {
    ARROW_ASSIGN_OR_RAISE(auto reader, store_->OpenReader(key));
    ARROW_ASSIGN_OR_RAISE(auto decoder, BlockDecoder::Make(reader->schema(), pool_.get()));
    std::vector<std::shared_ptr<arrow::RecordBatch>> out;
    while (true) {
      ARROW_ASSIGN_OR_RAISE(auto block, reader->Next());
      if (!block) break;
      ARROW_ASSIGN_OR_RAISE(auto batch, decoder->Decode(*block));
      out.push_back(batch);
    }
    return out;
  }

  std::filesystem::path dir_;
  MemoryMetrics metrics_;
  std::unique_ptr<BudgetedMemoryPool> pool_;
  std::unique_ptr<BlockStore> store_;
};

// Writers -> partition buffers -> store (-> spill) -> readers: same rows, same order per
// (writer, partition), for every schema. Under SABOT_TEST_TINY_BUDGET everything spills.
TEST_F(BlockStoreTest, ExactRoundTripThroughBufferingSealingSpillAndReadBack) {
  for (auto kind : testing::AllTestSchemaKinds()) {
    SCOPED_TRACE(testing::ToString(kind));
    MakeStore(testing::TestBudgetBytes(64 << 20), testing::TestSpillOptions());
    const std::string shuffle = "rt-" + testing::ToString(kind);
    std::map<StreamKey, std::vector<std::shared_ptr<arrow::RecordBatch>>> written;
    std::vector<std::unique_ptr<PartitionBuffer>> buffers;
    PartitionBufferOptions options;
    options.target_rows = 150;
    options.codec.compression =
        kind == TestSchemaKind::kStrings ? arrow::Compression::ZSTD : arrow::Compression::LZ4_FRAME;
    for (int writer = 0; writer < 2; ++writer) {
      for (int partition = 0; partition < 3; ++partition) {
        StreamKey key{shuffle, partition, writer, 0};
        ASSERT_OK(store_->AddStream(key, testing::TestSchema(kind)));
        auto sink = [this, key](SealedBlock block) { return store_->Append(key, std::move(block)); };
        ASSERT_OK_AND_ASSIGN(auto buffer,
                             PartitionBuffer::Make(key, testing::TestSchema(kind), options,
                                                   pool_.get(), sink, &metrics_));
        buffers.push_back(std::move(buffer));
      }
    }
    int64_t row = 0;
    for (int round = 0; round < 6; ++round) {
      for (auto& buffer : buffers) {
        int64_t rows = 37 + (round * 13 + buffer->key().partition_id * 7) % 90;
        ASSERT_OK_AND_ASSIGN(auto slice, testing::MakeTestBatch(kind, row, rows));
        row += rows;
        written[buffer->key()].push_back(slice);
        ASSERT_OK(buffer->Append(slice));
      }
      if (round == 2) ASSERT_OK(store_->SpillAll());  // a mix of spilled and in-memory blocks
    }
    for (auto& buffer : buffers) {
      ASSERT_OK(buffer->Finish());
      ASSERT_OK(store_->Finish(buffer->key()));
    }
    auto stats = store_->stats();
    EXPECT_GT(stats.blocks_on_disk, 0);
    if (testing::TinyBudgetRequested()) {
      EXPECT_EQ(stats.blocks_in_memory, 0);
    }

    EXPECT_EQ(store_->ListStreams(shuffle).size(), 6u);
    for (const auto& [key, inputs] : written) {
      ASSERT_OK_AND_ASSIGN(auto blocks, ReadAll(key));
      ASSERT_OK_AND_ASSIGN(auto expected, testing::ConcatenateDense(inputs));
      ASSERT_OK_AND_ASSIGN(auto actual, testing::ConcatenateDense(blocks));
      ASSERT_BATCHES_EQUAL(*expected, *actual);
    }
    auto snapshot = metrics_.Snapshot(pool_.get());
    EXPECT_GT(snapshot.shuffles[shuffle].blocks_read_back, 0);
    EXPECT_EQ(snapshot.shuffles[shuffle].blocks_read_back, snapshot.shuffles[shuffle].blocks_spilled);
    EXPECT_EQ(snapshot.shuffles[shuffle].spill_files_open, 0) << "finished streams close files";
    EXPECT_LE(snapshot.peak_bytes, snapshot.budget_bytes);
    buffers.clear();
    ASSERT_OK(store_->Release(shuffle));
    EXPECT_EQ(pool_->bytes_allocated(), 0);
    store_.reset();
  }
}

TEST_F(BlockStoreTest, WritingTenTimesTheBudgetNeverExceedsItAndSpills) {
  const int64_t budget = 4 << 20;
  MakeStore(budget, testing::TestSpillOptions());
  auto kind = TestSchemaKind::kPrimitive;
  PartitionBufferOptions options;
  options.target_bytes = 64 * 1024;
  std::vector<std::unique_ptr<PartitionBuffer>> buffers;
  std::map<StreamKey, std::vector<std::pair<int64_t, int64_t>>> ranges;
  for (int partition = 0; partition < 4; ++partition) {
    StreamKey key{"big", partition, 0, 0};
    ASSERT_OK(store_->AddStream(key, testing::TestSchema(kind)));
    auto sink = [this, key](SealedBlock block) { return store_->Append(key, std::move(block)); };
    ASSERT_OK_AND_ASSIGN(auto buffer, PartitionBuffer::Make(key, testing::TestSchema(kind),
                                                            options, pool_.get(), sink));
    buffers.push_back(std::move(buffer));
  }
  int64_t row = 0;
  int64_t sealed_bytes = 0;
  while (sealed_bytes < 10 * budget) {
    for (auto& buffer : buffers) {
      ASSERT_OK_AND_ASSIGN(auto slice, testing::MakeTestBatch(kind, row, 5000));
      ranges[buffer->key()].emplace_back(row, 5000);
      row += 5000;
      ASSERT_OK(buffer->Append(slice));
      sealed_bytes += 5000 * 17;  // what the slice holds: int64 + double + validity + bits
    }
  }
  for (auto& buffer : buffers) {
    ASSERT_OK(buffer->Finish());
    ASSERT_OK(store_->Finish(buffer->key()));
  }
  EXPECT_LE(pool_->peak_bytes(), budget) << "the pool's own peak never passes the budget";
  auto snapshot = metrics_.Snapshot(pool_.get());
  EXPECT_GT(snapshot.agent.blocks_spilled, 0);
  EXPECT_GT(snapshot.agent.bytes_spilled, 8 * budget);
  for (const auto& [key, parts] : ranges) {
    ASSERT_OK_AND_ASSIGN(auto reader, store_->OpenReader(key));
    ASSERT_OK_AND_ASSIGN(auto decoder, BlockDecoder::Make(reader->schema(), pool_.get()));
    int64_t total = 0;
    for (const auto& p : parts) total += p.second;
    // Compare block by block against the rows regenerated from their global row numbers.
    size_t part = 0;
    int64_t part_offset = 0;
    int64_t seen = 0;
    while (true) {
      ASSERT_OK_AND_ASSIGN(auto block, reader->Next());
      if (!block) break;
      ASSERT_OK_AND_ASSIGN(auto batch, decoder->Decode(*block));
      int64_t done = 0;
      while (done < batch->num_rows()) {
        int64_t take = std::min(batch->num_rows() - done, parts[part].second - part_offset);
        ASSERT_OK_AND_ASSIGN(auto expected, testing::MakeTestBatch(
                                                kind, parts[part].first + part_offset, take));
        ASSERT_BATCHES_EQUAL(*expected, *batch->Slice(done, take));
        done += take;
        part_offset += take;
        if (part_offset == parts[part].second) {
          ++part;
          part_offset = 0;
        }
      }
      seen += batch->num_rows();
    }
    EXPECT_EQ(seen, total);
  }
  EXPECT_LE(pool_->peak_bytes(), budget);
  buffers.clear();
}

TEST_F(BlockStoreTest, ReleaseFreesMemoryAndLeavesNoFiles) {
  MakeStore(64 << 20);
  auto kind = TestSchemaKind::kStrings;
  auto encoder = BlockEncoder::Make(testing::TestSchema(kind), {}, pool_.get()).ValueOrDie();
  for (const std::string shuffle : {"keep", "drop"}) {
    for (int p = 0; p < 3; ++p) {
      StreamKey key{shuffle, p, 0, 0};
      ASSERT_OK(store_->AddStream(key, testing::TestSchema(kind)));
      for (int i = 0; i < 4; ++i) {
        ASSERT_OK_AND_ASSIGN(auto batch, testing::MakeTestBatch(kind, i * 10, 10));
        ASSERT_OK(store_->Append(key, encoder->Encode(*batch).ValueOrDie()));
      }
    }
  }
  ASSERT_OK(store_->SpillAll());
  // New blocks after the spill stay in memory.
  ASSERT_OK_AND_ASSIGN(auto batch, testing::MakeTestBatch(kind, 100, 10));
  ASSERT_OK(store_->Append(StreamKey{"drop", 0, 0, 0}, encoder->Encode(*batch).ValueOrDie()));
  const auto root = std::filesystem::path(store_->spill_manager().root());
  ASSERT_TRUE(std::filesystem::exists(root / "drop" / "p0-w0-a0.arrows"));
  EXPECT_EQ(metrics_.Snapshot().shuffles["drop"].spill_files_open, 3);
  ASSERT_OK_AND_ASSIGN(auto reader, store_->OpenReader(StreamKey{"drop", 1, 0, 0}));

  ASSERT_OK(store_->Release("drop"));
  EXPECT_FALSE(std::filesystem::exists(root / "drop"));
  EXPECT_TRUE(std::filesystem::exists(root / "keep" / "p2-w0-a0.arrows"));
  EXPECT_TRUE(store_->ListStreams("drop").empty());
  EXPECT_EQ(store_->ListStreams("keep").size(), 3u);
  ASSERT_RAISES_WITH(Invalid, "released", reader->Next().status());
  ASSERT_RAISES_WITH(KeyError, "no such stream",
                     store_->OpenReader(StreamKey{"drop", 1, 0, 0}).status());
  auto snapshot = metrics_.Snapshot();
  EXPECT_EQ(snapshot.shuffles.count("drop"), 0u);
  EXPECT_EQ(snapshot.shuffles["keep"].spill_files_open, 3);
  EXPECT_GT(snapshot.agent.blocks_spilled, 12);

  ASSERT_OK(store_->Release("keep"));
  EXPECT_FALSE(std::filesystem::exists(root / "keep"));
  EXPECT_EQ(metrics_.Snapshot().agent.spill_files_open, 0);
  reader.reset();
  encoder.reset();
  batch.reset();
  EXPECT_EQ(pool_->bytes_allocated(), 0);
  store_.reset();
  EXPECT_FALSE(std::filesystem::exists(root)) << "the store removes its spill root";
}

TEST_F(BlockStoreTest, DiskFullReachesTheWriterAndLosesNothing) {
  auto faulty = std::make_shared<testing::FaultyFileSystem>();
  MakeStore(64 << 20, {}, faulty);
  auto kind = TestSchemaKind::kNestedLists;
  auto encoder = BlockEncoder::Make(testing::TestSchema(kind), {}, pool_.get()).ValueOrDie();
  StreamKey key{"full", 2, 5, 0};
  ASSERT_OK(store_->AddStream(key, testing::TestSchema(kind)));
  std::vector<std::shared_ptr<arrow::RecordBatch>> inputs;
  int64_t block_size = 0;
  for (int i = 0; i < 6; ++i) {
    ASSERT_OK_AND_ASSIGN(auto batch, testing::MakeTestBatch(kind, i * 50, 50));
    inputs.push_back(batch);
    auto block = encoder->Encode(*batch).ValueOrDie();
    block_size = block.ipc_bytes->size();
    ASSERT_OK(store_->Append(key, std::move(block)));
  }
  // Room for the schema and about two and a half blocks.
  faulty->SetDiskCapacity(static_cast<int64_t>(encoder->schema_message()->size()) +
                          block_size * 5 / 2);
  arrow::Status st = store_->SpillAll();
  ASSERT_RAISES_WITH(IOError, "No space left on device", st);
  const auto* detail = ShuffleErrorDetail::FromStatus(st);
  ASSERT_NE(detail, nullptr);
  EXPECT_EQ(detail->context().shuffle_id, "full");
  EXPECT_EQ(detail->context().partition_id, 2);
  EXPECT_EQ(detail->context().writer_task, 5);
  auto stats = store_->stats();
  EXPECT_GE(stats.blocks_on_disk, 1);
  EXPECT_EQ(stats.blocks_on_disk + stats.blocks_in_memory, 6);

  ASSERT_OK(store_->Finish(key));
  ASSERT_OK_AND_ASSIGN(auto blocks, ReadAll(key));
  ASSERT_EQ(blocks.size(), inputs.size()) << "every block, none partial";
  for (size_t i = 0; i < inputs.size(); ++i) ASSERT_BATCHES_EQUAL(*inputs[i], *blocks[i]);

  // With space again, the rest spills and still reads back whole.
  faulty->SetUnlimitedDisk();
  ASSERT_OK(store_->SpillAll());
  EXPECT_EQ(store_->stats().blocks_in_memory, 0);
  ASSERT_OK_AND_ASSIGN(auto again, ReadAll(key));
  ASSERT_EQ(again.size(), inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i) ASSERT_BATCHES_EQUAL(*inputs[i], *again[i]);
}

TEST_F(BlockStoreTest, WriteErrorsDuringAutomaticSpillReachAppend) {
  auto faulty = std::make_shared<testing::FaultyFileSystem>();
  SpillOptions spill;
  spill.high_watermark = 0;
  spill.low_watermark = 0;
  MakeStore(64 << 20, spill, faulty);
  auto kind = TestSchemaKind::kPrimitive;
  auto encoder = BlockEncoder::Make(testing::TestSchema(kind), {}, pool_.get()).ValueOrDie();
  StreamKey key{"io", 0, 0, 0};
  ASSERT_OK(store_->AddStream(key, testing::TestSchema(kind)));
  faulty->SetFailWrites(true);
  ASSERT_OK_AND_ASSIGN(auto batch, testing::MakeTestBatch(kind, 0, 100));
  ASSERT_RAISES_WITH(IOError, "injected I/O error",
                     store_->Append(key, encoder->Encode(*batch).ValueOrDie()));
  faulty->SetFailWrites(false);
  ASSERT_OK(store_->Finish(key));
  ASSERT_OK_AND_ASSIGN(auto blocks, ReadAll(key));
  ASSERT_EQ(blocks.size(), 1u);
  ASSERT_BATCHES_EQUAL(*batch, *blocks[0]);
}

TEST_F(BlockStoreTest, CorruptedOrTruncatedSpillIsNeverReturnedAsData) {
  for (bool truncate : {false, true}) {
    MakeStore(64 << 20);
    auto kind = TestSchemaKind::kDictionary;
    auto encoder = BlockEncoder::Make(testing::TestSchema(kind), {}, pool_.get()).ValueOrDie();
    StreamKey key{"bad", 0, 0, 0};
    ASSERT_OK(store_->AddStream(key, testing::TestSchema(kind)));
    for (int i = 0; i < 3; ++i) {
      ASSERT_OK_AND_ASSIGN(auto batch, testing::MakeTestBatch(kind, i * 30, 30));
      ASSERT_OK(store_->Append(key, encoder->Encode(*batch).ValueOrDie()));
    }
    ASSERT_OK(store_->Finish(key));
    ASSERT_OK(store_->SpillAll());
    ASSERT_OK_AND_ASSIGN(auto path, store_->spill_manager().PathFor(key));
    auto size = std::filesystem::file_size(path);
    if (truncate) {
      std::filesystem::resize_file(path, size - 3);
    } else {
      std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
      f.seekp(static_cast<std::streamoff>(size - 20));
      f.put('\x7f');
    }
    ASSERT_OK_AND_ASSIGN(auto reader, store_->OpenReader(key));
    ASSERT_OK_AND_ASSIGN(auto b0, reader->Next());
    ASSERT_TRUE(b0.has_value());
    ASSERT_OK_AND_ASSIGN(auto b1, reader->Next());
    ASSERT_TRUE(b1.has_value());
    auto b2 = reader->Next();
    const std::string expected = truncate ? "is truncated" : "is corrupted";
    ASSERT_RAISES_WITH(IOError, expected, b2.status());
    const auto* detail = ShuffleErrorDetail::FromStatus(b2.status());
    ASSERT_NE(detail, nullptr);
    EXPECT_EQ(detail->context().shuffle_id, "bad");
    store_.reset();
  }
}

TEST_F(BlockStoreTest, ReaderWaitsForAStreamBeingWritten) {
  MakeStore(64 << 20);
  auto kind = TestSchemaKind::kStruct;
  auto encoder = BlockEncoder::Make(testing::TestSchema(kind), {}, pool_.get()).ValueOrDie();
  StreamKey key{"live", 1, 1, 1};
  ASSERT_OK(store_->AddStream(key, testing::TestSchema(kind)));
  std::vector<std::shared_ptr<arrow::RecordBatch>> inputs;
  for (int i = 0; i < 5; ++i) inputs.push_back(testing::MakeTestBatch(kind, i * 9, 9).ValueOrDie());
  auto reading = std::async(std::launch::async, [&] { return ReadAll(key); });
  for (const auto& batch : inputs) {
    ASSERT_OK(store_->Append(key, encoder->Encode(*batch).ValueOrDie()));
    if (&batch == &inputs[2]) ASSERT_OK(store_->SpillAll());
  }
  ASSERT_OK(store_->Finish(key));
  ASSERT_OK_AND_ASSIGN(auto blocks, reading.get());
  ASSERT_EQ(blocks.size(), inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i) ASSERT_BATCHES_EQUAL(*inputs[i], *blocks[i]);
}

TEST_F(BlockStoreTest, CancelWakesAReaderWaitingForAnUnfinishedStream) {
  MakeStore(64 << 20);
  StreamKey key{"idle", 0, 0, 0};
  ASSERT_OK(store_->AddStream(key, testing::TestSchema(TestSchemaKind::kStruct)));
  ASSERT_OK_AND_ASSIGN(auto reader, store_->OpenReader(key));
  auto waiting = std::async(std::launch::async, [&] { return reader->Next(); });
  EXPECT_EQ(waiting.wait_for(std::chrono::milliseconds(50)), std::future_status::timeout);
  reader->Cancel();
  ASSERT_EQ(waiting.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  auto next = waiting.get();
  ASSERT_TRUE(next.status().IsCancelled()) << next.status().ToString();
}

// Writers append (and spill, each in its own thread) while readers read the same streams.
TEST_F(BlockStoreTest, ConcurrentWritersSpillersAndReadersAgree) {
  const int64_t budget = testing::TestBudgetBytes(2 << 20);
  SpillOptions spill = testing::TestSpillOptions();
  if (!testing::TinyBudgetRequested()) {
    spill.high_watermark = 0.5;
    spill.low_watermark = 0.2;
  }
  MakeStore(budget, spill);
  auto kind = TestSchemaKind::kStrings;
  auto encoder = BlockEncoder::Make(testing::TestSchema(kind), {}, pool_.get()).ValueOrDie();
  constexpr int kStreams = 4;
  constexpr int kBlocks = 60;
  for (int w = 0; w < kStreams; ++w) {
    ASSERT_OK(store_->AddStream(StreamKey{"conc", 0, w, 0}, testing::TestSchema(kind)));
  }
  std::vector<std::future<arrow::Status>> writers;
  std::vector<std::future<arrow::Result<int64_t>>> readers;
  for (int w = 0; w < kStreams; ++w) {
    StreamKey key{"conc", 0, w, 0};
    // Readers check each block as it comes and drop it: what a consumer holds stays charged to
    // the budget.
    readers.push_back(std::async(std::launch::async, [this, key, kind]() -> arrow::Result<int64_t> {
      ARROW_ASSIGN_OR_RAISE(auto reader, store_->OpenReader(key));
      ARROW_ASSIGN_OR_RAISE(auto decoder, BlockDecoder::Make(reader->schema(), pool_.get()));
      int64_t count = 0;
      while (true) {
        ARROW_ASSIGN_OR_RAISE(auto block, reader->Next());
        if (!block) break;
        ARROW_ASSIGN_OR_RAISE(auto batch, decoder->Decode(*block));
        ARROW_ASSIGN_OR_RAISE(auto expected, testing::MakeTestBatch(kind, count * 1000, 1000));
        if (!expected->Equals(*batch)) return arrow::Status::Invalid("block ", count, " differs");
        ++count;
      }
      return count;
    }));
    writers.push_back(std::async(std::launch::async, [&, key]() -> arrow::Status {
      arrow::Status st;
      for (int i = 0; i < kBlocks && st.ok(); ++i) {
        auto block = testing::MakeTestBatch(kind, i * 1000, 1000).Map(
            [&](std::shared_ptr<arrow::RecordBatch> batch) { return encoder->Encode(*batch); });
        st = block.ok() ? store_->Append(key, std::move(*block)) : block.status();
      }
      if (!st.ok()) {
        ARROW_RETURN_NOT_OK(store_->Abort(key, st));  // readers see the error, not a hang
        return st;
      }
      return store_->Finish(key);
    }));
  }
  for (auto& w : writers) ASSERT_OK(w.get());
  for (auto& r : readers) {
    ASSERT_OK_AND_ASSIGN(int64_t blocks, r.get());
    EXPECT_EQ(blocks, kBlocks);
  }
  EXPECT_LE(pool_->peak_bytes(), budget);
  EXPECT_GT(metrics_.Snapshot().agent.blocks_spilled, 0);
}

TEST_F(BlockStoreTest, UnencodedBlocksAreEncodedOnceWhenTheySpill) {
  MakeStore(64 << 20);
  auto kind = TestSchemaKind::kNestedDictionary;
  StreamKey key{"local", 0, 0, 0};
  ASSERT_OK(store_->AddStream(key, testing::TestSchema(kind)));
  std::vector<std::shared_ptr<arrow::RecordBatch>> inputs;
  for (int i = 0; i < 3; ++i) {
    ASSERT_OK_AND_ASSIGN(auto batch, testing::MakeTestBatch(kind, i * 21, 21));
    inputs.push_back(batch);
    SealedBlock block;
    block.batch = batch;
    block.num_rows = batch->num_rows();
    ASSERT_OK(store_->Append(key, block));
    if (i == 1) ASSERT_OK(store_->SpillAll());
  }
  ASSERT_OK(store_->Finish(key));
  ASSERT_OK_AND_ASSIGN(auto reader, store_->OpenReader(key));
  std::vector<bool> encoded;
  auto decoder = BlockDecoder::Make(testing::TestSchema(kind)).ValueOrDie();
  std::vector<std::shared_ptr<arrow::RecordBatch>> got;
  while (true) {
    ASSERT_OK_AND_ASSIGN(auto block, reader->Next());
    if (!block) break;
    encoded.push_back(block->encoded());
    got.push_back(decoder->Decode(*block).ValueOrDie());
  }
  EXPECT_EQ(encoded, (std::vector<bool>{true, true, false}));
  ASSERT_OK_AND_ASSIGN(auto expected, testing::ConcatenateDense(inputs));
  ASSERT_OK_AND_ASSIGN(auto actual, testing::ConcatenateDense(got));
  ASSERT_BATCHES_EQUAL(*expected, *actual);
}

// Events appended between blocks come back in their places, whether they stayed in memory or
// were spilled (with the blocks around them, several spills appending to one file), to every
// reader; they count in the stream's blocks and bytes but not its rows.
TEST_F(BlockStoreTest, EventsKeepTheirPlaceInMemoryAndThroughSpills) {
  MakeStore(64 << 20);
  auto kind = TestSchemaKind::kNestedDictionary;
  StreamKey key{"events", 0, 0, 0};
  ASSERT_OK(store_->AddStream(key, testing::TestSchema(kind)));
  std::vector<std::shared_ptr<arrow::RecordBatch>> batches;
  for (int i = 0; i < 3; ++i) batches.push_back(testing::MakeTestBatch(kind, i * 21, 21).ValueOrDie());
  auto event = [](const std::string& text) {
    return MakeEventBlock(arrow::Buffer::FromString(text)).ValueOrDie();
  };
  auto bare = [](const std::shared_ptr<arrow::RecordBatch>& batch) {
    SealedBlock block;
    block.batch = batch;
    block.num_rows = batch->num_rows();
    return block;
  };
  auto encoder = BlockEncoder::Make(testing::TestSchema(kind), {}, pool_.get()).ValueOrDie();
  ASSERT_OK(store_->Append(key, event("e0")));
  ASSERT_OK(store_->Append(key, bare(batches[0])));
  ASSERT_OK(store_->Append(key, event("e1")));
  ASSERT_OK(store_->SpillAll());  // e0, b0, e1 on disk
  ASSERT_OK(store_->Append(key, encoder->Encode(*batches[1]).ValueOrDie()));
  ASSERT_OK(store_->Append(key, event("")));
  ASSERT_OK(store_->Append(key, event("e3")));
  ASSERT_OK(store_->SpillAll());  // appended to the same file
  ASSERT_OK(store_->Append(key, bare(batches[2])));
  ASSERT_OK(store_->Append(key, event("e4")));  // these two stay in memory
  ASSERT_OK(store_->Finish(key));
  EXPECT_EQ(store_->stats().blocks_on_disk, 6);
  EXPECT_EQ(store_->stats().blocks_in_memory, 2);
  ASSERT_OK_AND_ASSIGN(BlockStreamStats stats, store_->StreamStats(key));
  EXPECT_EQ(stats.blocks, 8);
  EXPECT_EQ(stats.rows, 63);
  for (int round = 0; round < 2; ++round) {
    ASSERT_OK_AND_ASSIGN(auto reader, store_->OpenReader(key));
    auto decoder = BlockDecoder::Make(testing::TestSchema(kind)).ValueOrDie();
    std::vector<std::string> got;
    while (true) {
      ASSERT_OK_AND_ASSIGN(auto block, reader->Next());
      if (!block) break;
      if (block->is_event()) {
        got.push_back("e:" + block->event->ToString());
        continue;
      }
      ASSERT_OK_AND_ASSIGN(auto batch, decoder->Decode(*block));
      std::string which = "?";
      for (size_t i = 0; i < batches.size(); ++i) {
        ASSERT_OK_AND_ASSIGN(auto expected, testing::ConcatenateDense({batches[i]}));
        ASSERT_OK_AND_ASSIGN(auto actual, testing::ConcatenateDense({batch}));
        if (expected->Equals(*actual)) which = "b" + std::to_string(i);
      }
      got.push_back(which);
    }
    EXPECT_EQ(got, (std::vector<std::string>{"e:e0", "b0", "e:e1", "b1", "e:", "e:e3", "b2",
                                             "e:e4"}))
        << "round " << round;
  }
}

// Spilling an unencoded block allocates nothing from the budget, so it works with the pool
// full; and the pool's reclaimer (what the shuffle manager installs) makes room for an
// allocation that does not fit by spilling, instead of failing.
TEST_F(BlockStoreTest, UnencodedBlocksSpillWithTheBudgetFullAndReclaimMakesRoom) {
  SpillOptions spill;
  spill.high_watermark = 1.0;  // no automatic spill: the budget fills up
  spill.low_watermark = 0.5;
  MakeStore(1 << 20, spill);
  auto schema = arrow::schema({arrow::field("x", arrow::int64())});
  StreamKey key{"local", 0, 0, 0};
  ASSERT_OK(store_->AddStream(key, schema));
  std::vector<std::shared_ptr<arrow::RecordBatch>> inputs;
  // Blocks of 120 KiB each, their memory from the budget, until the next would not fit.
  const int64_t rows = 15 * 1024;
  while (pool_->available_bytes() >= rows * 8) {
    arrow::Int64Builder builder(pool_.get());
    ASSERT_OK(builder.Reserve(rows));
    for (int64_t i = 0; i < rows; ++i) {
      builder.UnsafeAppend(static_cast<int64_t>(inputs.size()) * rows + i);
    }
    ASSERT_OK_AND_ASSIGN(auto column, builder.Finish());
    auto batch = arrow::RecordBatch::Make(schema, rows, {column});
    inputs.push_back(batch);
    SealedBlock block;
    block.batch = batch;
    block.num_rows = rows;
    ASSERT_OK(store_->Append(key, block));
  }
  ASSERT_GE(inputs.size(), 7u);
  const int64_t full = pool_->bytes_allocated();
  ASSERT_LT(pool_->available_bytes(), rows * 8);

  // The blocks are held here too: spilling writes them without allocating from the budget.
  ASSERT_OK(store_->SpillAll());
  EXPECT_EQ(pool_->bytes_allocated(), full);
  EXPECT_EQ(store_->stats().blocks_in_memory, 0);
  EXPECT_EQ(store_->stats().blocks_on_disk, static_cast<int64_t>(inputs.size()));
  inputs.clear();
  EXPECT_EQ(pool_->bytes_allocated(), 0) << "spilled blocks return their memory";

  // Fill the budget again with stored blocks; an allocation that does not fit now spills them.
  for (int i = 0; pool_->available_bytes() >= rows * 8; ++i) {
    arrow::Int64Builder builder(pool_.get());
    ASSERT_OK(builder.AppendEmptyValues(rows));
    ASSERT_OK_AND_ASSIGN(auto column, builder.Finish());
    SealedBlock block;
    block.batch = arrow::RecordBatch::Make(schema, rows, {column});
    block.num_rows = rows;
    ASSERT_OK(store_->Append(key, std::move(block)));
  }
  ASSERT_RAISES_WITH(OutOfMemory, "budget exceeded",
                     arrow::AllocateBuffer(256 << 10, pool_.get()).status());
  pool_->SetReclaimer([this](int64_t bytes) { return store_->Reclaim(bytes); });
  ASSERT_OK_AND_ASSIGN(auto room, arrow::AllocateBuffer(256 << 10, pool_.get()));
  EXPECT_LE(pool_->bytes_allocated(), pool_->budget() / 2 + (256 << 10));
  EXPECT_GT(store_->stats().blocks_on_disk, static_cast<int64_t>(7));
  EXPECT_LE(pool_->peak_bytes(), pool_->budget());
  room.reset();
  pool_->SetReclaimer(nullptr);
  ASSERT_OK(store_->Finish(key));
  // Read back one block at a time (holding them all would not fit the budget).
  ASSERT_OK_AND_ASSIGN(auto reader, store_->OpenReader(key));
  ASSERT_OK_AND_ASSIGN(auto decoder, BlockDecoder::Make(schema, pool_.get()));
  int64_t total = 0;
  for (int64_t index = 0;; ++index) {
    ASSERT_OK_AND_ASSIGN(auto block, reader->Next());
    if (!block) break;
    ASSERT_OK_AND_ASSIGN(auto batch, decoder->Decode(*block));
    total += batch->num_rows();
    if (index < 7) {
      // The first blocks, spilled with the pool full, read back exactly.
      auto values = std::static_pointer_cast<arrow::Int64Array>(batch->column(0));
      for (int64_t i = 0; i < rows; ++i) ASSERT_EQ(values->Value(i), index * rows + i);
    }
  }
  EXPECT_EQ(total, store_->StreamStats(key).ValueOrDie().rows);
}

TEST_F(BlockStoreTest, AbortedStreamsEndInTheirErrorAndStatsCountEveryBlock) {
  MakeStore(64 << 20);
  auto kind = TestSchemaKind::kPrimitive;
  auto encoder = BlockEncoder::Make(testing::TestSchema(kind), {}, pool_.get()).ValueOrDie();
  StreamKey key{"abort", 0, 4, 0};
  ASSERT_OK(store_->AddStream(key, testing::TestSchema(kind)));
  int64_t bytes = 0;
  for (int i = 0; i < 3; ++i) {
    ASSERT_OK_AND_ASSIGN(auto batch, testing::MakeTestBatch(kind, i * 10, 10 + i));
    auto block = encoder->Encode(*batch).ValueOrDie();
    bytes += block.size_bytes();
    ASSERT_OK(store_->Append(key, std::move(block)));
    if (i == 1) ASSERT_OK(store_->SpillAll());
  }
  ASSERT_OK_AND_ASSIGN(auto stats, store_->StreamStats(key));
  EXPECT_EQ(stats.blocks, 3);
  EXPECT_EQ(stats.rows, 33);
  EXPECT_EQ(stats.bytes, bytes);
  EXPECT_FALSE(stats.finished);
  ASSERT_RAISES_WITH(Invalid, "needs an error", store_->Abort(key, arrow::Status::OK()));
  ASSERT_OK(store_->Abort(key, arrow::Status::IOError("writer task crashed")));
  ASSERT_OK_AND_ASSIGN(stats, store_->StreamStats(key));
  EXPECT_TRUE(stats.finished);
  ASSERT_OK_AND_ASSIGN(auto reader, store_->OpenReader(key));
  for (int i = 0; i < 3; ++i) {
    ASSERT_OK_AND_ASSIGN(auto block, reader->Next());
    ASSERT_TRUE(block.has_value());
  }
  ASSERT_RAISES_WITH(IOError, "writer task crashed", reader->Next().status());
  ASSERT_RAISES_WITH(KeyError, "no such stream", store_->StreamStats(StreamKey{"abort", 1, 4, 0}).status());
}

TEST_F(BlockStoreTest, ValidatesKeysAndLifecycle) {
  MakeStore(64 << 20);
  auto schema = testing::TestSchema(TestSchemaKind::kPrimitive);
  ASSERT_RAISES_WITH(Invalid, "shuffle id", store_->AddStream(StreamKey{"../etc", 0, 0, 0}, schema));
  ASSERT_RAISES_WITH(Invalid, "shuffle id", store_->AddStream(StreamKey{"a/b", 0, 0, 0}, schema));
  ASSERT_RAISES_WITH(Invalid, "negative", store_->AddStream(StreamKey{"ok", -1, 0, 0}, schema));
  StreamKey key{"ok", 0, 0, 0};
  ASSERT_OK(store_->AddStream(key, schema));
  ASSERT_RAISES_WITH(AlreadyExists, "already", store_->AddStream(key, schema));
  auto encoder = BlockEncoder::Make(schema, {}, pool_.get()).ValueOrDie();
  ASSERT_OK_AND_ASSIGN(auto batch, testing::MakeTestBatch(TestSchemaKind::kPrimitive, 0, 3));
  auto block = encoder->Encode(*batch).ValueOrDie();
  ASSERT_RAISES_WITH(KeyError, "no such stream", store_->Append(StreamKey{"ok", 1, 0, 0}, block));
  ASSERT_OK(store_->Finish(key));
  ASSERT_RAISES_WITH(Invalid, "Append after Finish", store_->Append(key, block));
  ASSERT_RAISES_WITH(Invalid, "neither bytes nor batch", store_->Append(key, SealedBlock{}));
}

}  // namespace
}  // namespace sabot
