#include "sabot/dataflow/collect_sink.h"

#include <cstdint>
#include <memory>
#include <set>
#include <vector>

#include <gtest/gtest.h>

#include <arrow/api.h>

#include "sabot/dataflow/local_executor.h"
#include "sabot/dataflow/plan_builder.h"
#include "sabot/testing/assertions.h"

namespace sabot {
namespace {

std::shared_ptr<arrow::Table> Values(int64_t rows) {
  arrow::Int64Builder values;
  for (int64_t r = 0; r < rows; ++r) EXPECT_OK(values.Append(r));
  return arrow::Table::Make(arrow::schema({arrow::field("v", arrow::int64())}),
                            {values.Finish().ValueOrDie()});
}

struct Collection {
  std::set<const uint8_t*> addresses;  // the data buffer of every collected batch
  int64_t rows = 0;
  int64_t sum = 0;  // of v, read after the job ended (and freed its shuffle memory)
};

Collection Collected(const LogicalPlan& plan,
                                                       std::shared_ptr<arrow::Table> table) {
  LocalExecutorOptions options;
  options.threads = 2;
  options.collected = std::make_shared<CollectedOutput>();
  auto tables = std::make_shared<ProvidedTables>();
  EXPECT_OK(tables->Add("t", table));
  options.tables = tables;
  EXPECT_OK(RunLocalJob(plan, options).status());
  Collection out;
  for (int32_t subtask = 0; subtask < 3; ++subtask) {
    for (const auto& batch : options.collected->Batches("out", subtask)) {
      out.addresses.insert(batch->column_data(0)->buffers[1]->data());
      out.rows += batch->num_rows();
      const auto& v = static_cast<const arrow::Int64Array&>(*batch->column(0));
      for (int64_t i = 0; i < v.length(); ++i) out.sum += v.Value(i);
    }
  }
  return out;
}

TEST(CollectSinkTest, KeepsBatchesOfItsOwnChainAndCopiesShuffledOnes) {
  auto table = Values(10000);
  const uint8_t* producer = table->column(0)->chunk(0)->data()->buffers[1]->data();
  constexpr int64_t kSum = 10000 * 9999 / 2;
  {
    // Source -> collect in one chain: slices of the table's own buffer.
    PlanBuilder b;
    b.Source(TableSourceParams{"t", 1000, {}}, 1, "src").Sink(CollectSinkParams{}, {}, "out");
    ASSERT_OK_AND_ASSIGN(LogicalPlan plan, b.Build());
    Collection c = Collected(plan, table);
    ASSERT_EQ(c.rows, 10000);
    ASSERT_EQ(c.sum, kSum);
    EXPECT_EQ(c.addresses, std::set<const uint8_t*>{producer});
  }
  {
    // Through a shuffle the batches view the job's shuffle memory: they are copied out, and
    // still read right after the job freed that memory (ASan would see a use after free).
    PlanBuilder b;
    b.Source(TableSourceParams{"t", 1000, {}}, 2, "src")
        .Rebalance()
        .Sink(CollectSinkParams{}, 3, "out");
    ASSERT_OK_AND_ASSIGN(LogicalPlan plan, b.Build());
    Collection c = Collected(plan, table);
    ASSERT_EQ(c.rows, 10000);
    ASSERT_EQ(c.sum, kSum);
    EXPECT_EQ(c.addresses.count(producer), 0u);
  }
}

}  // namespace
}  // namespace sabot
