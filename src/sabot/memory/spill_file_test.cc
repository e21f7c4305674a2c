#include "sabot/memory/spill_file.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <vector>

#include <gtest/gtest.h>

#include <arrow/filesystem/localfs.h>
#include <arrow/io/file.h>
#include <arrow/ipc/reader.h>

#include "sabot/memory/block_codec.h"
#include "sabot/memory/faulty_filesystem.h"
#include "sabot/memory/test_batches.h"
#include "sabot/testing/assertions.h"

namespace sabot {
namespace {

using testing::TestSchemaKind;

class SpillFileTest : public ::testing::TestWithParam<arrow::Compression::type> {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("sabot-spill-file-test-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
    path_ = (dir_ / "p0-w0-a0.arrows").string();
    BlockCodecOptions options;
    options.compression = GetParam();
    encoder_ = BlockEncoder::Make(testing::TestSchema(kind_), options,
                                  arrow::default_memory_pool())
                   .ValueOrDie();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::vector<std::shared_ptr<arrow::RecordBatch>> Batches(int n) {
    std::vector<std::shared_ptr<arrow::RecordBatch>> out;
    for (int i = 0; i < n; ++i) out.push_back(testing::MakeTestBatch(kind_, i * 40, 40).ValueOrDie());
    return out;
  }

  // Writes `batches` as blocks; returns their locations.
  std::vector<SpillBlockLocation> Write(std::shared_ptr<arrow::fs::FileSystem> fs,
                                        const std::vector<std::shared_ptr<arrow::RecordBatch>>& batches) {
    auto writer = SpillFileWriter::Open(fs, path_, encoder_->schema_message()).ValueOrDie();
    std::vector<SpillBlockLocation> locations;
    for (const auto& b : batches) {
      locations.push_back(writer->Append(encoder_->Encode(*b).ValueOrDie()).ValueOrDie());
    }
    EXPECT_TRUE(writer->Close().ok());
    return locations;
  }

  void Damage(int64_t offset) {
    std::fstream f(path_, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(offset);
    char c;
    f.read(&c, 1);
    c = static_cast<char>(c ^ 0x40);
    f.seekp(offset);
    f.write(&c, 1);
  }

  TestSchemaKind kind_ = TestSchemaKind::kEverything;
  std::filesystem::path dir_;
  std::string path_;
  std::unique_ptr<BlockEncoder> encoder_;
  std::shared_ptr<arrow::fs::FileSystem> local_ = std::make_shared<arrow::fs::LocalFileSystem>();
};

TEST_P(SpillFileTest, BlocksReadBackExactlyAndTheFileIsAnArrowIpcStream) {
  auto batches = Batches(5);
  auto locations = Write(local_, batches);
  ASSERT_OK_AND_ASSIGN(auto reader, SpillFileReader::Open(local_, path_));
  auto decoder = BlockDecoder::Make(testing::TestSchema(kind_)).ValueOrDie();
  for (size_t i = 0; i < batches.size(); ++i) {
    ASSERT_OK_AND_ASSIGN(auto block, reader->Read(locations[i], arrow::default_memory_pool()));
    ASSERT_OK_AND_ASSIGN(auto batch, decoder->Decode(block));
    ASSERT_BATCHES_EQUAL(*batches[i], *batch);
  }
  // Independently: Arrow's own stream reader reads the whole file.
  ASSERT_OK_AND_ASSIGN(auto file, arrow::io::ReadableFile::Open(path_));
  ASSERT_OK_AND_ASSIGN(auto ipc, arrow::ipc::RecordBatchStreamReader::Open(file));
  for (const auto& expected : batches) {
    std::shared_ptr<arrow::RecordBatch> batch;
    ASSERT_OK(ipc->ReadNext(&batch));
    ASSERT_NE(batch, nullptr);
    ASSERT_BATCHES_EQUAL(*expected, *batch);
  }
  std::shared_ptr<arrow::RecordBatch> end;
  ASSERT_OK(ipc->ReadNext(&end));
  EXPECT_EQ(end, nullptr);
}

// Events are spilled in place between the blocks, as their raw bytes, and read back as events
// (checksummed like blocks); the row blocks around them are untouched.
TEST_P(SpillFileTest, EventsSpillInPlaceAndReadBackAsEvents) {
  auto batches = Batches(2);
  const std::string binary("\0barrier\xff", 9);
  std::vector<SealedBlock> blocks = {
      MakeEventBlock(arrow::Buffer::FromString("first")).ValueOrDie(),
      encoder_->Encode(*batches[0]).ValueOrDie(),
      MakeEventBlock(arrow::Buffer::FromString("")).ValueOrDie(),
      MakeEventBlock(arrow::Buffer::FromString(binary)).ValueOrDie()};
  SealedBlock bare;  // unencoded: encoded into the file as it is appended
  bare.batch = batches[1];
  bare.num_rows = batches[1]->num_rows();
  blocks.push_back(bare);
  blocks.push_back(MakeEventBlock(arrow::Buffer::FromString("last")).ValueOrDie());
  std::vector<SpillBlockLocation> locations;
  {
    auto writer = SpillFileWriter::Open(local_, path_, encoder_->schema_message()).ValueOrDie();
    for (const auto& block : blocks) {
      ASSERT_OK_AND_ASSIGN(auto location, writer->Append(block, *encoder_));
      locations.push_back(location);
    }
    ASSERT_OK(writer->Close());
  }
  std::vector<bool> is_event;
  for (const auto& location : locations) is_event.push_back(location.event);
  EXPECT_EQ(is_event, (std::vector<bool>{true, false, true, true, false, true}));
  EXPECT_EQ(locations[2].length, 0);
  ASSERT_OK_AND_ASSIGN(auto reader, SpillFileReader::Open(local_, path_));
  auto decoder = BlockDecoder::Make(testing::TestSchema(kind_)).ValueOrDie();
  std::vector<std::string> got;
  for (const auto& location : locations) {
    ASSERT_OK_AND_ASSIGN(auto block, reader->Read(location, arrow::default_memory_pool()));
    if (block.is_event()) {
      EXPECT_EQ(block.num_rows, 0);
      EXPECT_EQ(block.ipc_bytes, nullptr);
      got.push_back("e:" + block.event->ToString());
    } else {
      ASSERT_OK_AND_ASSIGN(auto batch, decoder->Decode(block));
      got.push_back(batch->Equals(*batches[0]) ? "b0" : batch->Equals(*batches[1]) ? "b1" : "?");
    }
  }
  EXPECT_EQ(got, (std::vector<std::string>{"e:first", "b0", "e:", "e:" + binary, "b1", "e:last"}));
  // A damaged event is caught like a damaged block.
  Damage(locations[3].offset + 2);
  ASSERT_RAISES_WITH(IOError, "is corrupted",
                     reader->Read(locations[3], arrow::default_memory_pool()).status());
}

TEST_P(SpillFileTest, ReopeningAppendsAndKeepsEarlierBlocks) {
  auto batches = Batches(4);
  auto first = Write(local_, {batches[0], batches[1]});
  auto second = Write(local_, {batches[2], batches[3]});
  EXPECT_EQ(second[0].offset, first[1].offset + first[1].length) << "appended, not overwritten";
  ASSERT_OK_AND_ASSIGN(auto reader, SpillFileReader::Open(local_, path_));
  auto decoder = BlockDecoder::Make(testing::TestSchema(kind_)).ValueOrDie();
  std::vector<SpillBlockLocation> all{first[0], first[1], second[0], second[1]};
  for (size_t i = 0; i < all.size(); ++i) {
    ASSERT_OK_AND_ASSIGN(auto block, reader->Read(all[i], arrow::default_memory_pool()));
    ASSERT_OK_AND_ASSIGN(auto batch, decoder->Decode(block));
    ASSERT_BATCHES_EQUAL(*batches[i], *batch);
  }
}

TEST_P(SpillFileTest, CorruptionIsDetected) {
  auto locations = Write(local_, Batches(3));
  Damage(locations[1].offset + locations[1].length / 2);
  ASSERT_OK_AND_ASSIGN(auto reader, SpillFileReader::Open(local_, path_));
  ASSERT_OK(reader->Read(locations[0], arrow::default_memory_pool()).status());
  ASSERT_RAISES_WITH(IOError, "is corrupted",
                     reader->Read(locations[1], arrow::default_memory_pool()).status());
  ASSERT_OK(reader->Read(locations[2], arrow::default_memory_pool()).status());
}

TEST_P(SpillFileTest, TruncationIsDetected) {
  auto locations = Write(local_, Batches(3));
  std::filesystem::resize_file(path_, locations[2].offset + locations[2].length - 5);
  ASSERT_OK_AND_ASSIGN(auto reader, SpillFileReader::Open(local_, path_));
  ASSERT_OK(reader->Read(locations[1], arrow::default_memory_pool()).status());
  ASSERT_RAISES_WITH(IOError, "is truncated",
                     reader->Read(locations[2], arrow::default_memory_pool()).status());
}

TEST_P(SpillFileTest, DiskFullIsAnErrorAndLeavesEarlierBlocksReadable) {
  auto faulty = std::make_shared<testing::FaultyFileSystem>();
  auto batches = Batches(3);
  ASSERT_OK_AND_ASSIGN(auto writer, SpillFileWriter::Open(faulty, path_, encoder_->schema_message()));
  ASSERT_OK_AND_ASSIGN(auto b0, encoder_->Encode(*batches[0]));
  ASSERT_OK_AND_ASSIGN(auto l0, writer->Append(b0));
  ASSERT_OK_AND_ASSIGN(auto b1, encoder_->Encode(*batches[1]));
  // Room for half of the next block: a short write, then "disk full".
  faulty->SetDiskCapacity(faulty->bytes_written() + b1.ipc_bytes->size() / 2);
  arrow::Status full = writer->Append(b1).status();
  // The cause (errno text), the file, and how much was being written where.
  ASSERT_RAISES_WITH(IOError, "No space left on device", full);
  ASSERT_RAISES_WITH(IOError, path_, full);
  ASSERT_RAISES_WITH(IOError,
                     "writing a block (" + std::to_string(b1.ipc_bytes->size()) +
                         " bytes at offset " + std::to_string(l0.offset + l0.length) + ")",
                     full);
  EXPECT_EQ(writer->committed_size(), l0.offset + l0.length);
  // The writer stays failed: nothing more is written after a failure.
  faulty->SetUnlimitedDisk();
  ASSERT_OK_AND_ASSIGN(auto b2, encoder_->Encode(*batches[2]));
  ASSERT_RAISES_WITH(IOError, "No space left on device", writer->Append(b2).status());
  ASSERT_RAISES_WITH(IOError, "No space left on device", writer->Close());

  ASSERT_OK_AND_ASSIGN(auto reader, SpillFileReader::Open(faulty, path_));
  ASSERT_OK_AND_ASSIGN(auto block, reader->Read(l0, arrow::default_memory_pool()));
  auto decoder = BlockDecoder::Make(testing::TestSchema(kind_)).ValueOrDie();
  ASSERT_OK_AND_ASSIGN(auto batch, decoder->Decode(block));
  ASSERT_BATCHES_EQUAL(*batches[0], *batch);

  // Reopened, the writer appends after the half-written bytes, which no location points to.
  ASSERT_OK_AND_ASSIGN(auto again, SpillFileWriter::Open(faulty, path_, encoder_->schema_message()));
  ASSERT_OK_AND_ASSIGN(auto l1, again->Append(b1));
  EXPECT_EQ(l1.offset, l0.offset + l0.length + b1.ipc_bytes->size() / 2);
  ASSERT_OK(again->Close());
  ASSERT_OK_AND_ASSIGN(auto reader2, SpillFileReader::Open(faulty, path_));
  ASSERT_OK_AND_ASSIGN(auto block1, reader2->Read(l1, arrow::default_memory_pool()));
  ASSERT_OK_AND_ASSIGN(auto batch1, decoder->Decode(block1));
  ASSERT_BATCHES_EQUAL(*batches[1], *batch1);
}

TEST_P(SpillFileTest, IoErrorOnOpenIsClear) {
  auto faulty = std::make_shared<testing::FaultyFileSystem>();
  faulty->SetFailWrites(true);
  ASSERT_RAISES_WITH(IOError, "cannot open spill file",
                     SpillFileWriter::Open(faulty, path_, encoder_->schema_message()).status());
}

INSTANTIATE_TEST_SUITE_P(Compression, SpillFileTest,
                         ::testing::Values(arrow::Compression::UNCOMPRESSED,
                                           arrow::Compression::LZ4_FRAME,
                                           arrow::Compression::ZSTD),
                         [](const auto& info) {
                           return arrow::util::Codec::GetCodecAsString(info.param);
                         });

}  // namespace
}  // namespace sabot
