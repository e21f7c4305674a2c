#include "sabot/shuffle/shuffle_manager.h"

#include <chrono>
#include <future>
#include <thread>

#include <gtest/gtest.h>

#include <arrow/array.h>
#include <arrow/builder.h>
#include <arrow/table.h>
#include <arrow/type.h>

#include "sabot/memory/row_bytes.h"
#include "sabot/memory/test_budget.h"
#include "sabot/runtime/generated_shuffle_run.h"
#include "sabot/testing/assertions.h"
#include "sabot/transport/in_process_transport.h"

namespace sabot {
namespace {

constexpr int64_t kBudget = 256 << 20;

std::unique_ptr<ShuffleManager> MakeManager(Transport* transport) {
  ShuffleManagerOptions options;
  options.memory_budget = testing::TestBudgetBytes(kBudget);
  options.spill = testing::TestSpillOptions();
  if (testing::TinyBudgetRequested()) {
    // Small segments, so 16x16 pipelined channels still fit in the tiny budget's network share.
    options.network.segment_size = 1024;
  }
  return ShuffleManager::Make(options, transport).ValueOrDie();
}

ShuffleOptions TestShuffleOptions(ShuffleMode mode) {
  ShuffleOptions options;
  options.mode = mode;
  options.target_block_rows = 300;
  // Under the tiny budget, blocks small enough for 16x16 pipelined channels to fit in it.
  options.target_block_bytes = testing::TinyBudgetRequested() ? 2048 : 64 * 1024;
  options.timeout = std::chrono::seconds(60);
  return options;
}

struct Case {
  int32_t writers;
  int32_t partitions;
  ShuffleMode mode;
  EdgeType edge;
  KeyDistribution keys = KeyDistribution::kUniform;
  int64_t batches_per_writer = 3;
  int64_t batch_rows = 500;
};

std::string Name(const ::testing::TestParamInfo<Case>& info) {
  const Case& c = info.param;
  std::string edge = c.edge == EdgeType::kHash        ? "hash"
                     : c.edge == EdgeType::kRange     ? "range"
                     : c.edge == EdgeType::kRebalance ? "rebalance"
                     : c.edge == EdgeType::kBroadcast ? "broadcast"
                                                      : "forward";
  return std::to_string(c.writers) + "x" + std::to_string(c.partitions) + "_" +
         std::string(ShuffleModeName(c.mode)) + "_" + edge +
         (c.keys == KeyDistribution::kSkewed ? "_skewed" : "") +
         (c.batches_per_writer == 0 ? "_empty_writers" : "");
}

class ShuffleManagerCorrectness : public ::testing::TestWithParam<Case> {};

// Every row written is read exactly once by the right reader (every reader for BROADCAST), in
// writer order, checked by GeneratedShuffleCheck's independent computation.
TEST_P(ShuffleManagerCorrectness, EveryRowExactlyOnceAtItsPartition) {
  const Case& c = GetParam();
  ASSERT_OK_AND_ASSIGN(auto transport, InProcessTransport::Make());
  auto manager = MakeManager(transport.get());
  GeneratedJob job;
  job.data.batch_rows = c.batch_rows;
  job.data.key_cardinality = 1000;
  job.data.distribution = c.keys;
  job.data.hot_key_fraction = 0.9;
  job.num_writers = c.writers;
  job.batches_per_writer = c.batches_per_writer;
  ASSERT_OK_AND_ASSIGN(auto spec, job.MakeSpec(c.edge, c.partitions));
  ASSERT_OK_AND_ASSIGN(ShuffleId id,
                       manager->RegisterShuffle("op", spec, GeneratedSchema(job.data), c.writers,
                                                TestShuffleOptions(c.mode)));
  ASSERT_OK_AND_ASSIGN(auto check, GeneratedShuffleCheck::Make(job, spec));
  std::vector<TaskIndex> writers;
  for (TaskIndex w = 0; w < c.writers; ++w) writers.push_back(w);
  std::vector<PartitionId> partitions;
  for (PartitionId p = 0; p < c.partitions; ++p) partitions.push_back(p);
  ASSERT_OK_AND_ASSIGN(auto report, RunGeneratedShuffle(manager.get(), id, job, writers,
                                                        partitions, {}, check.get()));
  ASSERT_OK(check->Finish());
  const int64_t copies = c.edge == EdgeType::kBroadcast ? c.partitions : 1;
  EXPECT_EQ(check->rows_checked(), job.total_rows() * copies);
  EXPECT_EQ(report.rows_written, job.total_rows());

  ASSERT_OK_AND_ASSIGN(ShuffleStats stats, manager->Stats(id));
  EXPECT_EQ(stats.state, ShuffleLifecycle::kComplete);
  EXPECT_EQ(stats.writers_finished, c.writers);
  EXPECT_EQ(stats.rows_written, job.total_rows());
  int64_t partition_total = 0;
  for (int64_t rows : stats.partition_rows) partition_total += rows;
  EXPECT_EQ(partition_total, job.total_rows() * copies);
  if (testing::TinyBudgetRequested() && c.mode == ShuffleMode::kBlocking && job.total_rows() > 0) {
    EXPECT_GT(stats.blocks_spilled, 0) << "the tiny budget must make blocking shuffles spill";
  }
  EXPECT_LE(manager->pool()->peak_bytes(), manager->pool()->budget());
  ASSERT_OK(manager->Release(id));
}

std::vector<Case> AllCases() {
  std::vector<Case> cases;
  for (ShuffleMode mode : {ShuffleMode::kPipelined, ShuffleMode::kBlocking}) {
    for (auto [n, m] : std::vector<std::pair<int, int>>{{1, 1}, {4, 4}, {10, 5}, {16, 16}}) {
      for (EdgeType edge : {EdgeType::kHash, EdgeType::kRange, EdgeType::kRebalance}) {
        cases.push_back({n, m, mode, edge});
      }
    }
    cases.push_back({4, 4, mode, EdgeType::kBroadcast});
    cases.push_back({5, 5, mode, EdgeType::kForward});
    cases.push_back({4, 8, mode, EdgeType::kHash, KeyDistribution::kSkewed});
    cases.push_back({3, 4, mode, EdgeType::kHash, KeyDistribution::kUniform, 0});
  }
  return cases;
}

INSTANTIATE_TEST_SUITE_P(Local, ShuffleManagerCorrectness, ::testing::ValuesIn(AllCases()), Name);

class ShuffleManagerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    transport_ = InProcessTransport::Make().ValueOrDie();
    manager_ = MakeManager(transport_.get());
    job_.data.batch_rows = 100;
    job_.data.key_cardinality = 50;
    job_.num_writers = 2;
    job_.batches_per_writer = 2;
    spec_ = job_.MakeSpec(EdgeType::kHash, 3).ValueOrDie();
    id_ = manager_->RegisterShuffle("op", spec_, GeneratedSchema(job_.data), 2,
                                    TestShuffleOptions(ShuffleMode::kBlocking))
              .ValueOrDie();
  }

  std::unique_ptr<InProcessTransport> transport_;
  std::unique_ptr<ShuffleManager> manager_;
  GeneratedJob job_;
  std::shared_ptr<const PartitionSpec> spec_;
  ShuffleId id_;
};

// The `sabot shuffle --memory-budget-mib 8 --mode blocking` case: four writers whose blocks
// are 256 KiB and whose stored output is 16 times the budget (48 times for BROADCAST). Writers
// and readers that find the budget full spill stored blocks (or wait for a spill in flight, or
// for readers to let go of batches) instead of failing, and the budget holds at every instant.
// BROADCAST and FORWARD hand on the caller's batches themselves: what the store keeps of them is
// copied into the budget, so it spills too instead of piling up outside the budget. RANGE on
// skewed keys makes sparse partitions, whose few rows must not keep whole partitioned batches
// alive in their buffers (they are copied out under memory pressure).
class ShuffleManagerMemoryTest
    : public ::testing::TestWithParam<std::pair<EdgeType, KeyDistribution>> {};

TEST_P(ShuffleManagerMemoryTest, BlockingShuffleUnderASmallBudgetSpillsInsteadOfFailing) {
  const EdgeType edge = GetParam().first;
  ASSERT_OK_AND_ASSIGN(auto transport, InProcessTransport::Make());
  ShuffleManagerOptions options;
  options.memory_budget = 8 << 20;
  ASSERT_OK_AND_ASSIGN(auto manager, ShuffleManager::Make(options, transport.get()));
  GeneratedJob job;
  job.data.batch_rows = 16 * 1024;
  job.num_writers = 4;
  job.batches_per_writer = 16;  // 4 x 16 x 16384 rows x 32 bytes = 128 MiB
  job.data.distribution = GetParam().second;
  job.data.hot_key_fraction = 0.5;
  const int32_t partitions = edge == EdgeType::kBroadcast ? 3 : 4;
  ASSERT_OK_AND_ASSIGN(auto spec, job.MakeSpec(edge, partitions));
  ShuffleOptions shuffle;
  shuffle.mode = ShuffleMode::kBlocking;
  ASSERT_OK_AND_ASSIGN(ShuffleId id, manager->RegisterShuffle("op", spec,
                                                              GeneratedSchema(job.data), 4,
                                                              shuffle));
  ASSERT_OK_AND_ASSIGN(auto check, GeneratedShuffleCheck::Make(job, spec));
  std::vector<PartitionId> readers;
  for (PartitionId p = 0; p < partitions; ++p) readers.push_back(p);
  ASSERT_OK_AND_ASSIGN(auto report, RunGeneratedShuffle(manager.get(), id, job, {0, 1, 2, 3},
                                                        readers, {}, check.get()));
  ASSERT_OK(check->Finish());
  const int64_t copies = edge == EdgeType::kBroadcast ? partitions : 1;
  EXPECT_EQ(check->rows_checked(), job.total_rows() * copies);
  EXPECT_EQ(report.rows_written, job.total_rows());
  ASSERT_OK_AND_ASSIGN(ShuffleStats stats, manager->Stats(id));
  EXPECT_GT(stats.blocks_spilled, 0) << "the stored output is many times the budget";
  EXPECT_LE(manager->pool()->peak_bytes(), manager->pool()->budget());
  ASSERT_OK(manager->Release(id));
}

INSTANTIATE_TEST_SUITE_P(
    Edges, ShuffleManagerMemoryTest,
    ::testing::Values(std::make_pair(EdgeType::kHash, KeyDistribution::kUniform),
                      std::make_pair(EdgeType::kBroadcast, KeyDistribution::kUniform),
                      std::make_pair(EdgeType::kForward, KeyDistribution::kUniform),
                      std::make_pair(EdgeType::kRange, KeyDistribution::kSkewed)),
    [](const auto& info) {
      switch (info.param.first) {
        case EdgeType::kHash:
          return std::string("hash");
        case EdgeType::kBroadcast:
          return std::string("broadcast");
        case EdgeType::kForward:
          return std::string("forward");
        default:
          return std::string("range_skewed");
      }
    });

// A writer waiting for budget memory (nothing left to spill) ends its wait when it is
// cancelled, instead of waiting out the allocation wait.
TEST(ShuffleManagerMemoryWaitTest, CancellingAWriterEndsItsWaitForMemory) {
  ASSERT_OK_AND_ASSIGN(auto transport, InProcessTransport::Make());
  ShuffleManagerOptions options;
  options.memory_budget = 1 << 20;
  options.allocation_wait = std::chrono::minutes(10);
  ASSERT_OK_AND_ASSIGN(auto manager, ShuffleManager::Make(options, transport.get()));
  GeneratedJob job;
  // 64 KiB: admitted (its working set fits in half the budget), but its partitioned copy cannot
  // fit beside the memory held below.
  job.data.batch_rows = 2 * 1024;
  ASSERT_OK_AND_ASSIGN(auto spec, job.MakeSpec(EdgeType::kHash, 2));
  ShuffleOptions shuffle;
  shuffle.mode = ShuffleMode::kBlocking;
  shuffle.target_block_bytes = 64 * 1024;
  ASSERT_OK_AND_ASSIGN(ShuffleId id, manager->RegisterShuffle("op", spec,
                                                              GeneratedSchema(job.data), 1,
                                                              shuffle));
  ASSERT_OK(manager->OpenWriter(id, 0));
  // Memory someone else holds, not spillable: the writer can only wait for it.
  ASSERT_OK_AND_ASSIGN(auto held, arrow::AllocateBuffer((1 << 20) - (16 << 10), manager->pool()));
  ASSERT_OK_AND_ASSIGN(auto batch, job.WriterBatch(0, 0));
  std::thread canceller([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    manager->CancelWriter(id, 0, arrow::Status::Cancelled("the job was cancelled"));
  });
  arrow::Status written = manager->Write(id, 0, batch);
  canceller.join();
  ASSERT_RAISES_WITH(Cancelled, "cancelled", written);
  held.reset();
  ASSERT_OK(manager->Release(id));
}

// Issue 9: `sabot shuffle --mode blocking --memory-budget-mib 8 --writers 8 --partitions 2`.
// What each writer holds and cannot spill (its buffered rows, the batch it partitions, the block
// it seals) is about 2 MiB with 512 KiB batches and 256 KiB blocks, so the 8 MiB budget cannot
// hold every writer's at once: admission lets writers in as their working sets fit (half the
// budget), and the others wait for them instead of all starting and starving each other until
// the allocation wait ends them. The allocation wait is short, so a regression fails fast.
ShuffleManagerOptions SmallBudgetOptions() {
  ShuffleManagerOptions options;
  options.memory_budget = 8 << 20;
  options.allocation_wait = std::chrono::seconds(2);
  return options;
}

GeneratedJob AdmissionJob(int32_t writers) {
  GeneratedJob job;
  job.data.batch_rows = 16 * 1024;  // 512 KiB batches, as `sabot shuffle` makes them
  job.num_writers = writers;
  job.batches_per_writer = writers >= 16 ? 16 : 8;
  return job;
}

class ShuffleManagerAdmissionTest
    : public ::testing::TestWithParam<std::pair<int32_t, ShuffleMode>> {};

TEST_P(ShuffleManagerAdmissionTest, ManyWritersUnderASmallBudgetWaitForAdmissionNotForMemory) {
  const auto [writers, mode] = GetParam();
  ASSERT_OK_AND_ASSIGN(auto transport, InProcessTransport::Make());
  ASSERT_OK_AND_ASSIGN(auto manager, ShuffleManager::Make(SmallBudgetOptions(), transport.get()));
  GeneratedJob job = AdmissionJob(writers);
  ASSERT_OK_AND_ASSIGN(auto spec, job.MakeSpec(EdgeType::kHash, 2));
  ShuffleOptions shuffle;
  shuffle.mode = mode;
  // 16 writers: 64 KiB blocks, so their batches (8 times larger) grow their admissions. 32
  // writers keep 256 KiB blocks: the 2 readers' 64 inputs, each reading back a spilled block
  // when it runs, fit in the budget only because a blocking read runs a few inputs at a time.
  if (writers == 16) shuffle.target_block_bytes = 64 * 1024;
  ASSERT_OK_AND_ASSIGN(ShuffleId id, manager->RegisterShuffle("op", spec,
                                                              GeneratedSchema(job.data), writers,
                                                              shuffle));
  // The working sets of all writers together do not fit: some must wait for admission.
  ASSERT_OK_AND_ASSIGN(auto first, job.WriterBatch(0, 0));
  const int64_t working_set = ShuffleManager::WriterWorkingSetBytes(
      *manager->GetShuffle(id).ValueOrDie(), RowBytes::RangeBytes(*first, 0, first->num_rows()));
  ASSERT_GT(working_set * writers, manager->pool()->budget());
  ASSERT_OK_AND_ASSIGN(auto check, GeneratedShuffleCheck::Make(job, spec));
  std::vector<TaskIndex> tasks;
  for (TaskIndex w = 0; w < writers; ++w) tasks.push_back(w);
  ASSERT_OK_AND_ASSIGN(auto report,
                       RunGeneratedShuffle(manager.get(), id, job, tasks, {0, 1}, {}, check.get()));
  ASSERT_OK(check->Finish());
  EXPECT_EQ(check->rows_checked(), job.total_rows());
  EXPECT_EQ(report.rows_written, job.total_rows());
  ASSERT_OK_AND_ASSIGN(ShuffleStats stats, manager->Stats(id));
  EXPECT_EQ(stats.writers_finished, writers);
  if (mode == ShuffleMode::kBlocking) {
    EXPECT_GT(stats.blocks_spilled, 0) << "the stored output is many times the budget";
  }
  EXPECT_LE(manager->pool()->peak_bytes(), manager->pool()->budget());
  ASSERT_OK(manager->Release(id));
}

INSTANTIATE_TEST_SUITE_P(
    Writers, ShuffleManagerAdmissionTest,
    ::testing::Values(std::make_pair(8, ShuffleMode::kBlocking),
                      std::make_pair(16, ShuffleMode::kBlocking),
                      std::make_pair(32, ShuffleMode::kBlocking),
                      std::make_pair(8, ShuffleMode::kPipelined)),
    [](const auto& info) {
      return std::to_string(info.param.first) + "_writers_" +
             (info.param.second == ShuffleMode::kBlocking ? "blocking" : "pipelined");
    });

class ShuffleManagerAdmissionWaitTest : public ::testing::Test {
 protected:
  // Two writers of 2 MiB working sets fill the 4 MiB that open writers may use.
  void SetUp() override {
    transport_ = InProcessTransport::Make().ValueOrDie();
    ShuffleManagerOptions options = SmallBudgetOptions();
    options.allocation_wait = std::chrono::minutes(10);
    manager_ = ShuffleManager::Make(options, transport_.get()).ValueOrDie();
    job_ = AdmissionJob(4);
    spec_ = job_.MakeSpec(EdgeType::kHash, 2).ValueOrDie();
    ShuffleOptions shuffle;
    shuffle.mode = ShuffleMode::kBlocking;
    id_ = manager_->RegisterShuffle("op", spec_, GeneratedSchema(job_.data), 4, shuffle)
              .ValueOrDie();
  }

  std::unique_ptr<InProcessTransport> transport_;
  std::unique_ptr<ShuffleManager> manager_;
  GeneratedJob job_;
  std::shared_ptr<const PartitionSpec> spec_;
  ShuffleId id_;
};

TEST_F(ShuffleManagerAdmissionWaitTest, AWaitingWriterIsAdmittedWhenAnotherFinishes) {
  ASSERT_OK(manager_->OpenWriter(id_, 0));
  ASSERT_OK(manager_->OpenWriter(id_, 1));
  auto third = std::async(std::launch::async, [&] { return manager_->OpenWriter(id_, 2); });
  EXPECT_EQ(third.wait_for(std::chrono::milliseconds(100)), std::future_status::timeout)
      << "the third writer's working set does not fit beside the first two";
  ASSERT_OK(manager_->Finish(id_, 0));
  ASSERT_OK(third.get());
  ASSERT_OK(manager_->Finish(id_, 1));
  ASSERT_OK(manager_->Finish(id_, 2));
  ASSERT_OK(manager_->Release(id_));
}

TEST_F(ShuffleManagerAdmissionWaitTest, CancellingAWriterEndsItsWaitForAdmission) {
  ASSERT_OK(manager_->OpenWriter(id_, 0));
  ASSERT_OK(manager_->OpenWriter(id_, 1));
  auto third = std::async(std::launch::async, [&] { return manager_->OpenWriter(id_, 2); });
  EXPECT_EQ(third.wait_for(std::chrono::milliseconds(100)), std::future_status::timeout);
  manager_->CancelWriter(id_, 2, arrow::Status::Cancelled("the job was cancelled"));
  ASSERT_EQ(third.wait_for(std::chrono::seconds(30)), std::future_status::ready);
  ASSERT_RAISES_WITH(Cancelled, "waiting for admission", third.get());
  // Its place is given up: the writers holding the room finish, and it may open again.
  ASSERT_OK(manager_->Finish(id_, 0));
  ASSERT_OK(manager_->OpenWriter(id_, 2));
  ASSERT_OK(manager_->Finish(id_, 1));
  ASSERT_OK(manager_->Finish(id_, 2));
  ASSERT_OK(manager_->Release(id_));
}

// A run whose writers wait for admission ends at once when it is cancelled.
TEST_F(ShuffleManagerAdmissionWaitTest, CancellingARunEndsWritersWaitingForAdmission) {
  ASSERT_OK(manager_->OpenWriter(id_, 0));
  ASSERT_OK(manager_->OpenWriter(id_, 1));
  ASSERT_OK_AND_ASSIGN(auto check, GeneratedShuffleCheck::Make(job_, spec_));
  ShuffleRunCancellation cancellation;
  auto run = std::async(std::launch::async, [&] {
    return RunGeneratedShuffle(manager_.get(), id_, job_, {2, 3}, {}, {}, check.get(), nullptr,
                               &cancellation)
        .status();
  });
  EXPECT_EQ(run.wait_for(std::chrono::milliseconds(100)), std::future_status::timeout);
  cancellation.Cancel(arrow::Status::Cancelled("the job was cancelled"));
  ASSERT_EQ(run.wait_for(std::chrono::seconds(30)), std::future_status::ready);
  ASSERT_RAISES_WITH(Cancelled, "the job was cancelled", run.get());
  ASSERT_OK(manager_->Release(id_));
}

// A batch larger than its writer was admitted for grows the admission before it is
// partitioned; one whose working set can never fit is refused, naming the bytes and the budget.
TEST_F(ShuffleManagerAdmissionWaitTest, LargerBatchesGrowTheAdmissionOrAreRefused) {
  GeneratedJob big = job_;
  big.data.batch_rows = 48 * 1024;  // 1.5 MiB: a 4 MiB working set, all open writers may use
  ASSERT_OK_AND_ASSIGN(auto batch, big.WriterBatch(0, 0));
  ASSERT_OK(manager_->Write(id_, 0, batch));
  // Writer 1 must wait until writer 0 is done.
  auto second = std::async(std::launch::async, [&] { return manager_->OpenWriter(id_, 1); });
  EXPECT_EQ(second.wait_for(std::chrono::milliseconds(100)), std::future_status::timeout);
  ASSERT_OK(manager_->Finish(id_, 0));
  ASSERT_OK(second.get());
  big.data.batch_rows = 64 * 1024;  // 2 MiB: more than open writers may use
  ASSERT_OK_AND_ASSIGN(auto too_big, big.WriterBatch(1, 0));
  arrow::Status refused = manager_->Write(id_, 1, too_big);
  ASSERT_RAISES_WITH(OutOfMemory, "-byte budget", refused);
  EXPECT_NE(refused.message().find("8388608"), std::string::npos) << refused.ToString();
  ASSERT_OK(manager_->AbortWriter(id_, 1, refused));
  ASSERT_OK(manager_->Release(id_));
}

// WriteEvent reaches every partition once per writer, after every row the writer wrote before
// it (the rows it buffered are sealed and sent first) and before every row written after it:
// counted per (input, stretch between events) over all partitions against the rows written.
enum class EventCase { kPipelined, kBlocking, kBlockingSpilled };

class ShuffleManagerEventTest : public ::testing::TestWithParam<EventCase> {};

TEST_P(ShuffleManagerEventTest, WriteEventReachesEveryPartitionAfterTheRowsBeforeIt) {
  ASSERT_OK_AND_ASSIGN(auto transport, InProcessTransport::Make());
  auto manager = MakeManager(transport.get());
  GeneratedJob job;
  job.data.batch_rows = 500;
  job.data.key_cardinality = 1000;
  constexpr int32_t kWriters = 2;
  constexpr int32_t kPartitions = 3;
  ASSERT_OK_AND_ASSIGN(auto spec, job.MakeSpec(EdgeType::kHash, kPartitions));
  const ShuffleMode mode =
      GetParam() == EventCase::kPipelined ? ShuffleMode::kPipelined : ShuffleMode::kBlocking;
  ASSERT_OK_AND_ASSIGN(ShuffleId id, manager->RegisterShuffle("op", spec, GeneratedSchema(job.data),
                                                              kWriters, TestShuffleOptions(mode)));
  // Writer w: batches 0 and 1, event "mid", batch 2, event "end" (nothing after it).
  auto write = [&](int32_t w) -> arrow::Status {
    for (int64_t b = 0; b < 3; ++b) {
      if (b == 2) ARROW_RETURN_NOT_OK(manager->WriteEvent(id, w, arrow::Buffer::FromString("mid")));
      ARROW_ASSIGN_OR_RAISE(auto batch, job.WriterBatch(w, b));
      ARROW_RETURN_NOT_OK(manager->Write(id, w, batch));
    }
    ARROW_RETURN_NOT_OK(manager->WriteEvent(id, w, arrow::Buffer::FromString("end")));
    return manager->Finish(id, w);
  };
  // rows[input][stretch]: rows received from an input before "mid", between, after "end".
  struct Received {
    std::vector<std::vector<int64_t>> rows =
        std::vector<std::vector<int64_t>>(kWriters, std::vector<int64_t>(3, 0));
    std::vector<std::vector<std::string>> events =
        std::vector<std::vector<std::string>>(kWriters);
  };
  auto read = [&](PartitionId p) -> arrow::Result<Received> {
    ARROW_ASSIGN_OR_RAISE(auto reader, manager->ReadPartition(id, p));
    Received got;
    while (true) {
      ARROW_ASSIGN_OR_RAISE(ShuffleReaderItem item, reader->NextItem());
      if (item.kind == ShuffleReaderItem::Kind::kEnd) return got;
      if (item.kind == ShuffleReaderItem::Kind::kEvent) {
        got.events[item.input].push_back(item.event->ToString());
      } else if (item.kind == ShuffleReaderItem::Kind::kBatch) {
        got.rows[item.input][got.events[item.input].size()] += item.batch->num_rows();
      }
    }
  };
  std::vector<std::future<arrow::Result<Received>>> readers;
  std::vector<std::future<arrow::Status>> writers;
  if (mode == ShuffleMode::kPipelined) {
    for (PartitionId p = 0; p < kPartitions; ++p) {
      readers.push_back(std::async(std::launch::async, read, p));
    }
  }
  for (int32_t w = 0; w < kWriters; ++w) writers.push_back(std::async(std::launch::async, write, w));
  for (auto& writer : writers) ASSERT_OK(writer.get());
  if (GetParam() == EventCase::kBlockingSpilled) {
    ASSERT_OK(manager->block_store()->SpillAll());
    ASSERT_GT(manager->block_store()->stats().blocks_on_disk, 0);
    ASSERT_EQ(manager->block_store()->stats().blocks_in_memory, 0);
  }
  if (mode == ShuffleMode::kBlocking) {
    for (PartitionId p = 0; p < kPartitions; ++p) {
      readers.push_back(std::async(std::launch::async, read, p));
    }
  }
  std::vector<std::vector<int64_t>> total(kWriters, std::vector<int64_t>(3, 0));
  for (PartitionId p = 0; p < kPartitions; ++p) {
    ASSERT_OK_AND_ASSIGN(Received got, readers[p].get());
    for (int32_t w = 0; w < kWriters; ++w) {
      EXPECT_EQ(got.events[w], (std::vector<std::string>{"mid", "end"}))
          << "partition " << p << " input " << w;
      for (int s = 0; s < 3; ++s) total[w][s] += got.rows[w][s];
    }
  }
  for (int32_t w = 0; w < kWriters; ++w) {
    EXPECT_EQ(total[w], (std::vector<int64_t>{2 * job.data.batch_rows, job.data.batch_rows, 0}))
        << "writer " << w;
  }
  ASSERT_OK(manager->Release(id));
}

INSTANTIATE_TEST_SUITE_P(Modes, ShuffleManagerEventTest,
                         ::testing::Values(EventCase::kPipelined, EventCase::kBlocking,
                                           EventCase::kBlockingSpilled),
                         [](const auto& info) {
                           switch (info.param) {
                             case EventCase::kPipelined:
                               return std::string("pipelined");
                             case EventCase::kBlocking:
                               return std::string("blocking");
                             default:
                               return std::string("blocking_spilled");
                           }
                         });

TEST_F(ShuffleManagerTest, OversizedEventsAreRefusedAndChangeNothing) {
  ASSERT_OK_AND_ASSIGN(auto batch, job_.WriterBatch(0, 0));
  ASSERT_OK(manager_->Write(id_, 0, batch));
  ASSERT_OK_AND_ASSIGN(std::shared_ptr<arrow::Buffer> big,
                       arrow::AllocateBuffer(kMaxEventBytes + 1));
  ASSERT_RAISES_WITH(Invalid, "exceeds the limit of 65536", manager_->WriteEvent(id_, 0, big));
  ASSERT_RAISES_WITH(Invalid, "needs a payload", manager_->WriteEvent(id_, 0, nullptr));
  // The writer is still usable: nothing was flushed or failed.
  ASSERT_OK(manager_->WriteEvent(id_, 0, arrow::Buffer::FromString("ok")));
  ASSERT_OK(manager_->Finish(id_, 0));
}

TEST_F(ShuffleManagerTest, UnknownAndReleasedShufflesAreClearErrors) {
  ASSERT_OK_AND_ASSIGN(auto batch, job_.WriterBatch(0, 0));
  ASSERT_RAISES_WITH(KeyError, "shuffle 'nope'", manager_->Write("nope", 0, batch));
  ASSERT_OK(manager_->Release(id_));
  ASSERT_RAISES_WITH(Invalid, "released", manager_->Write(id_, 0, batch));
  ASSERT_RAISES_WITH(Invalid, "released", manager_->ReadPartition(id_, 0).status());
  ASSERT_OK_AND_ASSIGN(ShuffleStats stats, manager_->Stats(id_));
  EXPECT_EQ(stats.state, ShuffleLifecycle::kReleased);
}

TEST_F(ShuffleManagerTest, SchemaMismatchNamesTheShuffleAndField) {
  auto other = arrow::RecordBatch::Make(
      arrow::schema({arrow::field("key", arrow::utf8())}), 0,
      {arrow::MakeArrayOfNull(arrow::utf8(), 0).ValueOrDie()});
  arrow::Status status = manager_->Write(id_, 0, other);
  ASSERT_TRUE(status.IsInvalid()) << status.ToString();
  EXPECT_NE(status.message().find(id_), std::string::npos) << status.ToString();
  status = manager_->WritePartition(id_, 1, 0, other);
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find("partition 0"), std::string::npos) << status.ToString();
}

TEST_F(ShuffleManagerTest, PartitionOutOfRange) {
  ASSERT_RAISES_WITH(IndexError, "partition 3 is out of range",
                     manager_->ReadPartition(id_, 3).status());
  ASSERT_OK_AND_ASSIGN(auto batch, job_.WriterBatch(0, 0));
  ASSERT_RAISES_WITH(IndexError, "partition -1", manager_->WritePartition(id_, 0, -1, batch));
}

TEST_F(ShuffleManagerTest, FinishingTwiceIsAnError) {
  ASSERT_OK_AND_ASSIGN(auto batch, job_.WriterBatch(0, 0));
  ASSERT_OK(manager_->Write(id_, 0, batch));
  ASSERT_OK(manager_->Finish(id_, 0));
  ASSERT_RAISES_WITH(Invalid, "already finished", manager_->Finish(id_, 0));
}

TEST_F(ShuffleManagerTest, WritePartitionAndFlushDeliverWhatWasWritten) {
  ASSERT_OK_AND_ASSIGN(auto batch, job_.WriterBatch(0, 0));
  ASSERT_OK(manager_->WritePartition(id_, 0, 2, batch));
  ASSERT_OK(manager_->FlushPartition(id_, 0, 2));
  ASSERT_OK(manager_->Finish(id_, 0));
  ASSERT_OK(manager_->OpenWriter(id_, 1));
  ASSERT_OK(manager_->Finish(id_, 1));
  // Blocking output is kept: a second reader fetches it again. The rows may come in several
  // blocks (the tiny-budget run seals small ones): compare them concatenated.
  for (int round = 0; round < 2; ++round) {
    ASSERT_OK_AND_ASSIGN(auto reader, manager_->ReadPartition(id_, 2));
    ASSERT_OK_AND_ASSIGN(auto batches, reader->ReadAll());
    ASSERT_OK_AND_ASSIGN(auto table, arrow::Table::FromRecordBatches(batch->schema(), batches));
    ASSERT_OK_AND_ASSIGN(auto combined, table->CombineChunksToBatch());
    ASSERT_BATCHES_EQUAL(*batch, *combined);
  }
}

TEST_F(ShuffleManagerTest, AbortedWriterFailsItsReaders) {
  ASSERT_OK_AND_ASSIGN(auto batch, job_.WriterBatch(0, 0));
  ASSERT_OK(manager_->Write(id_, 0, batch));
  ASSERT_OK(manager_->AbortWriter(id_, 0, arrow::Status::IOError("disk on fire")));
  ASSERT_OK(manager_->OpenWriter(id_, 1));
  ASSERT_OK(manager_->Finish(id_, 1));
  for (PartitionId p = 0; p < 3; ++p) {
    ASSERT_OK_AND_ASSIGN(auto reader, manager_->ReadPartition(id_, p));
    auto all = reader->ReadAll();
    ASSERT_FALSE(all.ok());
    EXPECT_NE(all.status().message().find("disk on fire"), std::string::npos)
        << all.status().ToString();
  }
}

TEST_F(ShuffleManagerTest, AWriterThatNeverStartsTimesOutClearly) {
  ShuffleOptions options = TestShuffleOptions(ShuffleMode::kBlocking);
  options.timeout = std::chrono::milliseconds(200);
  ASSERT_OK_AND_ASSIGN(ShuffleId id, manager_->RegisterShuffle("late", spec_,
                                                               GeneratedSchema(job_.data), 1,
                                                               options));
  ASSERT_OK_AND_ASSIGN(auto reader, manager_->ReadPartition(id, 0));
  ASSERT_RAISES_WITH(IOError, "never started", reader->ReadAll().status());
}

// Readers waiting in Next() for writers that never open (their run holds only readers) end at
// once when the run is cancelled from another thread, with the cancellation's cause, long
// before the shuffle's 60 s channel timeout.
TEST_F(ShuffleManagerTest, CancellingARunEndsReadersWaitingForWriters) {
  ASSERT_OK_AND_ASSIGN(ShuffleId id, manager_->RegisterShuffle(
                                         "waiting", spec_, GeneratedSchema(job_.data), 2,
                                         TestShuffleOptions(ShuffleMode::kPipelined)));
  ASSERT_OK_AND_ASSIGN(auto check, GeneratedShuffleCheck::Make(job_, spec_));
  ShuffleRunCancellation cancellation;
  ShuffleProgress progress;
  arrow::Result<ShuffleRunReport> result;
  const auto start = std::chrono::steady_clock::now();
  std::thread run([&] {
    result = RunGeneratedShuffle(manager_.get(), id, job_, /*writers=*/{}, {0, 1, 2}, {},
                                 check.get(), &progress, &cancellation);
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // the readers are waiting
  EXPECT_EQ(progress.readers_finished.load(), 0);
  cancellation.Cancel(arrow::Status::Cancelled("the job manager gave up"));
  run.join();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
  ASSERT_RAISES_WITH(Cancelled, "the job manager gave up", result.status());
  EXPECT_EQ(progress.readers_finished.load(), 3);
  // A run started after the cancellation fails at once with the same cause.
  ASSERT_RAISES_WITH(Cancelled, "gave up",
                     RunGeneratedShuffle(manager_.get(), id, job_, {}, {0}, {}, check.get(),
                                         nullptr, &cancellation)
                         .status());
}

// Writers blocked waiting for credit from readers that never open (their run holds only
// writers) end at once when the run is cancelled, long before the 60 s channel timeout.
TEST_F(ShuffleManagerTest, CancellingARunEndsWritersWaitingForCredit) {
  ASSERT_OK_AND_ASSIGN(ShuffleId id, manager_->RegisterShuffle(
                                         "no-readers", spec_, GeneratedSchema(job_.data), 2,
                                         TestShuffleOptions(ShuffleMode::kPipelined)));
  GeneratedJob job = job_;
  job.batches_per_writer = 50;  // more blocks than the channels take without a reader
  ASSERT_OK_AND_ASSIGN(auto check, GeneratedShuffleCheck::Make(job, spec_));
  ShuffleRunCancellation cancellation;
  ShuffleProgress progress;
  arrow::Result<ShuffleRunReport> result;
  const auto start = std::chrono::steady_clock::now();
  std::thread run([&] {
    result = RunGeneratedShuffle(manager_.get(), id, job, {0, 1}, /*partitions=*/{}, {},
                                 check.get(), &progress, &cancellation);
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the writers are waiting
  EXPECT_EQ(progress.writers_finished.load(), 0);
  cancellation.Cancel(arrow::Status::Cancelled("no reader will come"));
  run.join();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
  ASSERT_RAISES_WITH(Cancelled, "no reader will come", result.status());
  EXPECT_EQ(progress.writers_finished.load(), 2);
}

// A writer waiting for network segments (another writer of its shuffle holds them all while it
// waits for credit from a reader that never comes) ends at once when cancelled, with a
// Cancelled status naming its shuffle, partition and writer; before, it waited for the
// shuffle's timeout and failed with IOError.
TEST_F(ShuffleManagerTest, CancellingAWriterEndsItsWaitForNetworkSegments) {
  ShuffleManagerOptions options;
  options.memory_budget = 64 << 20;
  options.spill = testing::TestSpillOptions();
  options.network.segment_size = 1024;
  options.network.exclusive_segments_per_channel = 0;  // every segment is the shuffle's floating
  options.network.floating_segments_per_shuffle = 2;
  ASSERT_OK_AND_ASSIGN(auto transport, InProcessTransport::Make());
  ASSERT_OK_AND_ASSIGN(auto manager, ShuffleManager::Make(options, transport.get()));
  ShuffleOptions shuffle = TestShuffleOptions(ShuffleMode::kPipelined);
  shuffle.target_block_bytes = 2048;
  shuffle.timeout = std::chrono::seconds(30);
  ASSERT_OK_AND_ASSIGN(ShuffleId id, manager->RegisterShuffle("segments", spec_,
                                                              GeneratedSchema(job_.data), 2,
                                                              shuffle));
  // 40 rows of four int64 columns: 1280 bytes, a block of two segments.
  GeneratedJob job = job_;
  job.data.batch_rows = 40;
  ASSERT_OK_AND_ASSIGN(auto batch, job.WriterBatch(0, 0));
  auto write_one_block = [&](TaskIndex w) -> arrow::Status {
    ARROW_RETURN_NOT_OK(manager->OpenWriter(id, w));
    ARROW_RETURN_NOT_OK(manager->WritePartition(id, w, 0, batch));
    return manager->FlushPartition(id, w, 0);
  };
  // Writer 0 takes both segments and waits for credit; then writer 1 waits for segments.
  auto first = std::async(std::launch::async, write_one_block, 0);
  while (manager->network()->stats().floating_in_use < 2) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  auto second = std::async(std::launch::async, write_one_block, 1);
  while (manager->network()->stats().waiting_producers < 1) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  manager->CancelWriter(id, 1, arrow::Status::IOError("a reader failed: disk on fire"));
  arrow::Status waited = second.get();
  ASSERT_RAISES_WITH(Cancelled, "network buffer segments", waited);
  for (const std::string& part :
       {"shuffle '" + id + "'", std::string("partition 0"), std::string("writer 1"),
        std::string("disk on fire")}) {
    EXPECT_NE(waited.message().find(part), std::string::npos) << part << ": " << waited.ToString();
  }
  manager->CancelWriter(id, 0, arrow::Status::Cancelled("the job was cancelled"));
  ASSERT_RAISES_WITH(Cancelled, "the job was cancelled", first.get());
  EXPECT_EQ(manager->network()->stats().waiting_producers, 0);
}

// Writers that cannot open (their buffers do not fit the budget) end the run promptly with that
// error: pipelined readers already waiting on them are cancelled rather than left to time out.
// Repeated, because the readers may be anywhere between opening and waiting when it happens.
TEST_F(ShuffleManagerTest, WritersThatCannotOpenEndTheRunPromptly) {
  ShuffleManagerOptions small;
  small.memory_budget = 1 << 20;
  ASSERT_OK_AND_ASSIGN(auto transport, InProcessTransport::Make());
  ASSERT_OK_AND_ASSIGN(auto manager, ShuffleManager::Make(small, transport.get()));
  GeneratedJob job = job_;
  job.num_writers = 4;
  ASSERT_OK_AND_ASSIGN(auto spec, job.MakeSpec(EdgeType::kHash, 64));
  ShuffleOptions options = TestShuffleOptions(ShuffleMode::kPipelined);
  options.target_block_bytes = 256 * 1024;  // 64 partitions x 256 KiB: more than the budget
  for (int round = 0; round < 20; ++round) {
    ASSERT_OK_AND_ASSIGN(ShuffleId id, manager->RegisterShuffle(
                                           "big", spec, GeneratedSchema(job.data), 4, options));
    ASSERT_OK_AND_ASSIGN(auto check, GeneratedShuffleCheck::Make(job, spec));
    std::vector<PartitionId> partitions;
    for (PartitionId p = 0; p < 64; ++p) partitions.push_back(p);
    const auto start = std::chrono::steady_clock::now();
    auto result =
        RunGeneratedShuffle(manager.get(), id, job, {0, 1, 2, 3}, partitions, {}, check.get());
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
    ASSERT_RAISES_WITH(OutOfMemory, "memory budget", result.status());
    ASSERT_OK(manager->Release(id));
  }
}

TEST_F(ShuffleManagerTest, ReleaseJobAndOrphans) {
  ShuffleManagerOptions options;
  options.orphan_timeout = std::chrono::milliseconds(50);
  ASSERT_OK_AND_ASSIGN(auto manager, ShuffleManager::Make(options, transport_.get()));
  auto schema = GeneratedSchema(job_.data);
  ASSERT_OK_AND_ASSIGN(ShuffleId a, manager->RegisterShuffle("a", spec_, schema, 1, {}, "job1"));
  ASSERT_OK_AND_ASSIGN(ShuffleId b, manager->RegisterShuffle("b", spec_, schema, 1, {}, "job1"));
  ASSERT_OK_AND_ASSIGN(ShuffleId c, manager->RegisterShuffle("c", spec_, schema, 1, {}, "job2"));
  EXPECT_EQ(manager->ReleaseJob("job1"), 2);
  EXPECT_EQ(manager->Stats(a)->state, ShuffleLifecycle::kReleased);
  EXPECT_EQ(manager->Stats(b)->state, ShuffleLifecycle::kReleased);
  EXPECT_NE(manager->Stats(c)->state, ShuffleLifecycle::kReleased);
  // The sweeper releases c once it has been untouched past the orphan timeout.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (manager->Stats(c)->state != ShuffleLifecycle::kReleased &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(manager->Stats(c)->state, ShuffleLifecycle::kReleased);
}

TEST_F(ShuffleManagerTest, ReleaseWhileAWriterIsOpenFailsItsNextCallCleanly) {
  ASSERT_OK_AND_ASSIGN(auto batch, job_.WriterBatch(0, 0));
  ASSERT_OK(manager_->Write(id_, 0, batch));
  ASSERT_OK(manager_->Release(id_));
  ASSERT_RAISES_WITH(Invalid, "released", manager_->Write(id_, 0, batch));
  ASSERT_RAISES_WITH(Invalid, "released", manager_->Finish(id_, 0));
  EXPECT_EQ(manager_->block_store()->ListStreams(id_).size(), 0u);
}

TEST_F(ShuffleManagerTest, BlocksLargerThanAChannelCanHoldAreRefusedUpFront) {
  ShuffleOptions options = TestShuffleOptions(ShuffleMode::kPipelined);
  options.target_block_bytes = 64 << 20;
  ASSERT_OK_AND_ASSIGN(ShuffleId id, manager_->RegisterShuffle("big", spec_,
                                                               GeneratedSchema(job_.data), 1,
                                                               options));
  ASSERT_RAISES_WITH(Invalid, "lower the block size", manager_->OpenWriter(id, 0));
}

TEST_F(ShuffleManagerTest, AnOpenReaderKeepsItsShuffleFromTheOrphanSweep) {
  ShuffleManagerOptions options;
  options.orphan_timeout = std::chrono::milliseconds(20);
  ASSERT_OK_AND_ASSIGN(auto manager, ShuffleManager::Make(options, transport_.get()));
  ShuffleOptions blocking = TestShuffleOptions(ShuffleMode::kBlocking);
  ASSERT_OK_AND_ASSIGN(ShuffleId id, manager->RegisterShuffle("kept", spec_,
                                                              GeneratedSchema(job_.data), 1,
                                                              blocking));
  ASSERT_OK(manager->OpenWriter(id, 0));
  ASSERT_OK(manager->Finish(id, 0));
  {
    ASSERT_OK_AND_ASSIGN(auto reader, manager->ReadPartition(id, 0));
    std::this_thread::sleep_for(std::chrono::milliseconds(150));
    EXPECT_EQ(manager->ReleaseOrphans(), 0);
    EXPECT_NE(manager->Stats(id)->state, ShuffleLifecycle::kReleased);
    ASSERT_OK(reader->ReadAll().status());
  }
  // Once the reader is gone and the timeout passes, the shuffle is an orphan again.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (manager->Stats(id)->state != ShuffleLifecycle::kReleased &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(manager->Stats(id)->state, ShuffleLifecycle::kReleased);
}

TEST_F(ShuffleManagerTest, ReregisteringTheSameDescriptorIsFineADifferentOneIsNot) {
  ASSERT_OK_AND_ASSIGN(auto descriptor, manager_->GetShuffle(id_));
  ASSERT_OK(manager_->RegisterShuffle(*descriptor));
  ShuffleDescriptor other = *descriptor;
  other.num_writers = 7;
  ASSERT_RAISES_WITH(AlreadyExists, "already registered", manager_->RegisterShuffle(other));
}

}  // namespace
}  // namespace sabot
