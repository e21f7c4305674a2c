#include "sabot/partition/partitioner.h"

#include <map>
#include <set>

#include <arrow/api.h>

#include "sabot/common/data_generator.h"
#include "sabot/partition/hash_partitioner.h"
#include "sabot/partition/key_hash.h"
#include "sabot/partition/partition_testing_internal.h"

namespace sabot {
namespace {

using testing::Json;
using testing::ReferenceSplit;

DataGeneratorOptions SmallTable(int64_t rows = 5000) {
  DataGeneratorOptions options;
  options.batch_rows = rows;
  options.key_cardinality = 1000;
  options.string_key = true;
  return options;
}

// Every row of `input` appears exactly once across `parts`, and each partition keeps input
// order. Rows are identified by payload column p0, which the generator makes unique and
// increasing. Returns the partition of each p0 value.
std::map<int64_t, PartitionId> ExpectEachRowOnceInOrder(const arrow::RecordBatch& input,
                                                        const PartitionedBatch& parts) {
  std::map<int64_t, PartitionId> where;
  int64_t total = 0;
  for (int32_t p = 0; p < parts.num_partitions(); ++p) {
    if (!parts.batches[p]) continue;
    EXPECT_GT(parts.batches[p]->num_rows(), 0) << "empty batch instead of nullptr";
    EXPECT_TRUE(parts.batches[p]->ValidateFull().ok());
    auto p0 = std::static_pointer_cast<arrow::Int64Array>(parts.batches[p]->GetColumnByName("p0"));
    for (int64_t j = 0; j < p0->length(); ++j) {
      if (j > 0) {
        EXPECT_LT(p0->Value(j - 1), p0->Value(j)) << "order broken in partition " << p;
      }
      EXPECT_TRUE(where.emplace(p0->Value(j), p).second) << "row twice: " << p0->Value(j);
    }
    total += p0->length();
  }
  EXPECT_EQ(total, input.num_rows());
  return where;
}

TEST(Partitioner, ForwardSendsTheWholeBatchToTaskModN) {
  ASSERT_OK_AND_ASSIGN(auto spec, PartitionSpec::Forward(3));
  ASSERT_OK_AND_ASSIGN(auto batch, GenerateBatch(SmallTable(), 0));
  for (TaskIndex task : {0, 1, 2, 3, 7}) {
    ASSERT_OK_AND_ASSIGN(auto partitioner, MakePartitioner(spec, batch->schema(), task));
    ASSERT_OK_AND_ASSIGN(auto parts, partitioner->Partition(batch));
    ASSERT_EQ(parts.num_partitions(), 3);
    for (int32_t p = 0; p < 3; ++p) {
      EXPECT_EQ(parts.batches[p].get(), p == task % 3 ? batch.get() : nullptr);
    }
  }
}

TEST(Partitioner, BroadcastSharesTheBatchWithEveryPartition) {
  ASSERT_OK_AND_ASSIGN(auto spec, PartitionSpec::Broadcast(5));
  ASSERT_OK_AND_ASSIGN(auto batch, GenerateBatch(SmallTable(), 0));
  ASSERT_OK_AND_ASSIGN(auto partitioner, MakePartitioner(spec, batch->schema(), 2));
  ASSERT_OK_AND_ASSIGN(auto parts, partitioner->Partition(batch));
  ASSERT_EQ(parts.num_partitions(), 5);
  for (const auto& part : parts.batches) EXPECT_EQ(part.get(), batch.get());
}

TEST(Partitioner, RebalanceIsRoundRobinAcrossBatches) {
  ASSERT_OK_AND_ASSIGN(auto spec, PartitionSpec::Rebalance(4));
  auto options = SmallTable(7);
  ASSERT_OK_AND_ASSIGN(auto partitioner,
                       MakePartitioner(spec, GeneratedSchema(options), /*writer_task=*/6));
  // Row j of the stream goes to (6 + j) % 4: starts at partition 2, continues across batches.
  int64_t row = 0;
  for (int64_t b = 0; b < 5; ++b) {
    ASSERT_OK_AND_ASSIGN(auto batch, GenerateBatch(options, b));
    ASSERT_OK_AND_ASSIGN(auto parts, partitioner->Partition(batch));
    auto where = ExpectEachRowOnceInOrder(*batch, parts);
    for (const auto& [p0, p] : where) {
      EXPECT_EQ(p, (6 + p0 / 16) % 4) << "global row " << p0 / 16;
      ++row;
    }
  }
  EXPECT_EQ(row, 35);
}

TEST(Partitioner, RebalanceWithOnePartitionIsZeroCopy) {
  ASSERT_OK_AND_ASSIGN(auto spec, PartitionSpec::Rebalance(1));
  ASSERT_OK_AND_ASSIGN(auto batch, GenerateBatch(SmallTable(), 0));
  ASSERT_OK_AND_ASSIGN(auto partitioner, MakePartitioner(spec, batch->schema(), 0));
  ASSERT_OK_AND_ASSIGN(auto parts, partitioner->Partition(batch));
  EXPECT_EQ(parts.batches[0].get(), batch.get());
}

TEST(Partitioner, HashKeepsKeysTogetherAcrossBatchesAndTasks) {
  auto options = SmallTable(3000);
  for (const std::vector<std::string>& keys :
       {std::vector<std::string>{"key"}, std::vector<std::string>{"key_string"},
        std::vector<std::string>{"key", "key_string"}}) {
    ASSERT_OK_AND_ASSIGN(auto spec, PartitionSpec::Hash(keys, 16));
    std::map<int64_t, PartitionId> partition_of_key;
    for (TaskIndex task = 0; task < 2; ++task) {
      ASSERT_OK_AND_ASSIGN(auto partitioner, MakePartitioner(spec, GeneratedSchema(options), task));
      for (int64_t b = task; b < 6; b += 2) {
        ASSERT_OK_AND_ASSIGN(auto batch, GenerateBatch(options, b));
        ASSERT_OK_AND_ASSIGN(auto parts, partitioner->Partition(batch));
        ExpectEachRowOnceInOrder(*batch, parts);
        for (int32_t p = 0; p < 16; ++p) {
          if (!parts.batches[p]) continue;
          auto key =
              std::static_pointer_cast<arrow::Int64Array>(parts.batches[p]->GetColumnByName("key"));
          for (int64_t j = 0; j < key->length(); ++j) {
            auto [it, inserted] = partition_of_key.emplace(key->Value(j), p);
            EXPECT_EQ(it->second, p) << "key " << key->Value(j) << " in two partitions";
          }
        }
      }
    }
    EXPECT_GT(partition_of_key.size(), 900u);
  }
}

// HASH output against a per-row scalar computation of docs/hashing.md (fmix64 and the combine
// written out here) and a Take-based split.
TEST(Partitioner, HashMatchesScalarReference) {
  auto options = SmallTable(4000);
  ASSERT_OK_AND_ASSIGN(auto batch, GenerateBatch(options, 3));
  batch = batch->Slice(17, 3000);  // non-zero offset
  for (int32_t n : {1, 3, 64, 1000}) {
    ASSERT_OK_AND_ASSIGN(auto spec, PartitionSpec::Hash({"key"}, n));
    ASSERT_OK_AND_ASSIGN(auto partitioner, MakePartitioner(spec, batch->schema(), 0));
    ASSERT_OK_AND_ASSIGN(auto parts, partitioner->Partition(batch));
    auto key = std::static_pointer_cast<arrow::Int64Array>(batch->GetColumnByName("key"));
    std::vector<PartitionId> ids;
    for (int64_t i = 0; i < key->length(); ++i) {
      // fmix64(seed * golden + value), written out.
      uint64_t h =
          0x5341424F542D3031ULL * 0x9E3779B97F4A7C15ULL + static_cast<uint64_t>(key->Value(i));
      h ^= h >> 33;
      h *= 0xFF51AFD7ED558CCDULL;
      h ^= h >> 33;
      h *= 0xC4CEB9FE1A85EC53ULL;
      h ^= h >> 33;
      ids.push_back(static_cast<PartitionId>((static_cast<unsigned __int128>(h) * n) >> 64));
    }
    auto expected = ReferenceSplit(batch, ids, n);
    for (int32_t p = 0; p < n; ++p) {
      if (expected[p] == nullptr) {
        EXPECT_EQ(parts.batches[p], nullptr);
      } else {
        ASSERT_NE(parts.batches[p], nullptr) << "partition " << p;
        ASSERT_BATCHES_EQUAL(*expected[p], *parts.batches[p]);
      }
    }
  }
}

TEST(Partitioner, HashSkewedKeysAllToOnePartitionIsZeroCopy) {
  auto options = SmallTable(2000);
  options.key_cardinality = 1;  // every row has key 0
  ASSERT_OK_AND_ASSIGN(auto batch, GenerateBatch(options, 0));
  ASSERT_OK_AND_ASSIGN(auto spec, PartitionSpec::Hash({"key"}, 64));
  ASSERT_OK_AND_ASSIGN(auto partitioner, MakePartitioner(spec, batch->schema(), 0));
  ASSERT_OK_AND_ASSIGN(auto parts, partitioner->Partition(batch));
  EXPECT_EQ(parts.batches[24].get(), batch.get());  // golden: int64 0 -> partition 24 of 64
  for (int32_t p = 0; p < 64; ++p) {
    if (p != 24) {
      EXPECT_EQ(parts.batches[p], nullptr);
    }
  }
  // Heavily skewed (90% one key): still every row once, the hot key in one place.
  options.key_cardinality = 1000;
  options.distribution = KeyDistribution::kSkewed;
  options.hot_key_fraction = 0.9;
  ASSERT_OK_AND_ASSIGN(auto skewed, GenerateBatch(options, 1));
  ASSERT_OK_AND_ASSIGN(auto skewed_parts, partitioner->Partition(skewed));
  ExpectEachRowOnceInOrder(*skewed, skewed_parts);
  EXPECT_GE(skewed_parts.num_rows(24), 1700);
}

TEST(Partitioner, HashNullKeysGoToOnePartition) {
  auto keys = Json(arrow::utf8(), R"([null, "a", null, "b", null, "c"])");
  auto payload = Json(arrow::int64(), "[0, 1, 2, 3, 4, 5]");
  auto schema =
      arrow::schema({arrow::field("k", arrow::utf8()), arrow::field("p0", arrow::int64())});
  auto batch = arrow::RecordBatch::Make(schema, 6, {keys, payload});
  ASSERT_OK_AND_ASSIGN(auto spec, PartitionSpec::Hash({"k"}, 64));
  ASSERT_OK_AND_ASSIGN(auto partitioner, MakePartitioner(spec, schema, 0));
  ASSERT_OK_AND_ASSIGN(auto parts, partitioner->Partition(batch));
  const PartitionId null_partition =
      HashToPartition(CombineKeyHash(kKeyHashRowSeed, kKeyHashNull), 64);
  EXPECT_EQ(null_partition, 16);  // docs/hashing.md
  ASSERT_NE(parts.batches[null_partition], nullptr);
  auto where = ExpectEachRowOnceInOrder(*batch, parts);
  EXPECT_EQ(where[0], null_partition);
  EXPECT_EQ(where[2], null_partition);
  EXPECT_EQ(where[4], null_partition);
}

TEST(Partitioner, EmptyBatchGivesAllNullptr) {
  auto options = SmallTable(100);
  ASSERT_OK_AND_ASSIGN(auto batch, GenerateBatch(options, 0));
  auto empty = batch->Slice(100, 0);
  ASSERT_OK_AND_ASSIGN(auto hash, PartitionSpec::Hash({"key"}, 4));
  ASSERT_OK_AND_ASSIGN(auto broadcast, PartitionSpec::Broadcast(4));
  ASSERT_OK_AND_ASSIGN(auto rebalance, PartitionSpec::Rebalance(4));
  ASSERT_OK_AND_ASSIGN(auto forward, PartitionSpec::Forward(4));
  for (const auto& spec : {hash, broadcast, rebalance, forward}) {
    ASSERT_OK_AND_ASSIGN(auto partitioner, MakePartitioner(spec, batch->schema(), 1));
    ASSERT_OK_AND_ASSIGN(auto parts, partitioner->Partition(empty));
    ASSERT_EQ(parts.num_partitions(), 4);
    for (const auto& part : parts.batches) EXPECT_EQ(part, nullptr) << spec->ToString();
  }
}

TEST(Partitioner, SchemaDriftIsAnErrorNamingTheField) {
  auto options = SmallTable(10);
  ASSERT_OK_AND_ASSIGN(auto batch, GenerateBatch(options, 0));
  ASSERT_OK_AND_ASSIGN(auto spec, PartitionSpec::Hash({"key"}, 4));
  ASSERT_OK_AND_ASSIGN(auto partitioner, MakePartitioner(spec, batch->schema(), 0));
  // A type change.
  auto renamed_type = arrow::schema(
      {arrow::field("key", arrow::int64()), arrow::field("key_string", arrow::large_utf8()),
       arrow::field("p0", arrow::int64()), arrow::field("p1", arrow::int64()),
       arrow::field("p2", arrow::int64())});
  ASSERT_RAISES_WITH(Invalid,
                     "batch field 1 'key_string' has type large_string but the partitioner was "
                     "bound to string",
                     CheckSameFields(*batch->schema(), *renamed_type));
  // A renamed field.
  ASSERT_OK_AND_ASSIGN(auto renamed, batch->RenameColumns({"key", "key_string", "p0", "q1", "p2"}));
  ASSERT_RAISES_WITH(Invalid, "batch field 3 is named 'q1' but the partitioner was bound to 'p1'",
                     partitioner->Partition(renamed));
  // A dropped and an added field.
  ASSERT_OK_AND_ASSIGN(auto dropped, batch->RemoveColumn(4));
  ASSERT_RAISES_WITH(Invalid, "field 4 'p2' is missing", partitioner->Partition(dropped));
  ASSERT_OK_AND_ASSIGN(auto added, batch->AddColumn(5, "extra", batch->column(0)));
  ASSERT_RAISES_WITH(Invalid, "field 5 'extra' is extra", partitioner->Partition(added));
  // Metadata differences are not drift.
  auto with_metadata =
      batch->ReplaceSchemaMetadata(arrow::key_value_metadata({"origin"}, {"test"}));
  ASSERT_OK(partitioner->Partition(with_metadata).status());
  ASSERT_RAISES_WITH(Invalid, "null batch", partitioner->Partition(nullptr));
}

TEST(Partitioner, FactoryErrorsNameTheProblem) {
  auto options = SmallTable(10);
  auto schema = GeneratedSchema(options);
  ASSERT_OK_AND_ASSIGN(auto missing, PartitionSpec::Hash({"customer"}, 4));
  ASSERT_RAISES_WITH(Invalid, "key column 'customer' is not in the input schema",
                     MakePartitioner(missing, schema, 0).status());
  auto nested =
      arrow::schema({arrow::field("k", arrow::struct_({arrow::field("x", arrow::int8())}))});
  ASSERT_OK_AND_ASSIGN(auto on_k, PartitionSpec::Hash({"k"}, 4));
  ASSERT_RAISES_WITH(TypeError, "key column 'k' has type struct<x: int8>",
                     MakePartitioner(on_k, nested, 0).status());
  ASSERT_OK_AND_ASSIGN(auto forward, PartitionSpec::Forward(4));
  ASSERT_RAISES_WITH(Invalid, "writer task index must be >= 0, got -1",
                     MakePartitioner(forward, schema, -1).status());
  ASSERT_RAISES_WITH(Invalid, "null input schema", MakePartitioner(forward, nullptr, 0).status());
  ASSERT_RAISES_WITH(Invalid, "null spec",
                     MakePartitioner(std::shared_ptr<const PartitionSpec>(), schema, 0).status());
  ASSERT_RAISES_WITH(Invalid, "null memory pool",
                     MakePartitioner(forward, schema, 0, nullptr).status());
}

TEST(Partitioner, DictionaryKeysPartitionLikeTheirValues) {
  auto plain = Json(arrow::utf8(), R"(["x", "y", "z", "x", null, "y", "w"])");
  auto dict =
      arrow::json::DictArrayFromJSONString(arrow::dictionary(arrow::int32(), arrow::utf8()),
                                           "[2, 0, 1, 2, null, 0, 3]", R"(["y", "z", "x", "w"])")
          .ValueOrDie();
  auto payload = Json(arrow::int64(), "[0, 1, 2, 3, 4, 5, 6]");
  ASSERT_OK_AND_ASSIGN(auto spec, PartitionSpec::Hash({"k"}, 8));
  std::map<int64_t, PartitionId> where[2];
  int i = 0;
  for (const auto& keys : {plain, dict}) {
    auto schema =
        arrow::schema({arrow::field("k", keys->type()), arrow::field("p0", arrow::int64())});
    auto batch = arrow::RecordBatch::Make(schema, 7, {keys, payload});
    ASSERT_OK_AND_ASSIGN(auto partitioner, MakePartitioner(spec, schema, 0));
    ASSERT_OK_AND_ASSIGN(auto parts, partitioner->Partition(batch));
    where[i++] = ExpectEachRowOnceInOrder(*batch, parts);
  }
  EXPECT_EQ(where[0], where[1]);
}

}  // namespace
}  // namespace sabot
