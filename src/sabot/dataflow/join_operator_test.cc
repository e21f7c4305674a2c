#include "sabot/dataflow/join_operator.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include <unistd.h>

#include <gtest/gtest.h>

#include <arrow/array.h>
#include <arrow/builder.h>
#include <arrow/type.h>

#include "sabot/dataflow/operator_binding.h"
#include "sabot/dataflow/operator_testing.h"
#include "sabot/dataflow/state_testing.h"
#include "sabot/testing/assertions.h"

// Joins are checked against a nested-loop join written out here over plain C++ rows, with the
// null-never-matches rule spelled out independently of Acero.

namespace sabot {
namespace {

using Collector = testing::CollectingOutput;

// One row of a side: a nullable key and a payload.
struct Row {
  std::optional<int64_t> key;
  int64_t payload = 0;
};

std::string Cell(const std::optional<int64_t>& v) { return v ? std::to_string(*v) : "null"; }

// A cell of an output column as text ("null" for null).
std::string Cell(const arrow::Array& array, int64_t i) {
  if (array.IsNull(i)) return "null";
  switch (array.type_id()) {
    case arrow::Type::INT64:
      return std::to_string(static_cast<const arrow::Int64Array&>(array).Value(i));
    case arrow::Type::INT32:
      return std::to_string(static_cast<const arrow::Int32Array&>(array).Value(i));
    case arrow::Type::STRING:
      return std::string(static_cast<const arrow::StringArray&>(array).GetView(i));
    default:
      return array.GetScalar(i).ValueOrDie()->ToString();
  }
}

// Every output row as "c0|c1|...", sorted: the join's output as a multiset.
std::vector<std::string> Rows(const std::vector<std::shared_ptr<arrow::RecordBatch>>& batches) {
  std::vector<std::string> rows;
  for (const auto& batch : batches) {
    for (int64_t r = 0; r < batch->num_rows(); ++r) {
      std::string row;
      for (int c = 0; c < batch->num_columns(); ++c) {
        row += (c ? "|" : "") + Cell(*batch->column(c), r);
      }
      rows.push_back(std::move(row));
    }
  }
  std::sort(rows.begin(), rows.end());
  return rows;
}

// The nested-loop reference: output columns k, left_payload, k_right, right_payload (semi/anti:
// the left ones; right_semi/right_anti: the right ones).
std::vector<std::string> Reference(JoinType how, const std::vector<Row>& left,
                                   const std::vector<Row>& right) {
  auto matches = [](const Row& l, const Row& r) { return l.key && r.key && *l.key == *r.key; };
  auto left_text = [](const Row& l) { return Cell(l.key) + "|" + std::to_string(l.payload); };
  auto right_text = [](const Row& r) { return Cell(r.key) + "|" + std::to_string(r.payload); };
  std::vector<std::string> rows;
  std::vector<bool> right_matched(right.size(), false);
  for (const Row& l : left) {
    bool matched = false;
    for (size_t j = 0; j < right.size(); ++j) {
      if (!matches(l, right[j])) continue;
      matched = true;
      right_matched[j] = true;
      if (how == JoinType::kInner || how == JoinType::kLeft || how == JoinType::kRight ||
          how == JoinType::kFull) {
        rows.push_back(left_text(l) + "|" + right_text(right[j]));
      }
    }
    if (!matched && (how == JoinType::kLeft || how == JoinType::kFull)) {
      rows.push_back(left_text(l) + "|null|null");
    }
    if ((matched && how == JoinType::kSemi) || (!matched && how == JoinType::kAnti)) {
      rows.push_back(left_text(l));
    }
  }
  for (size_t j = 0; j < right.size(); ++j) {
    if (!right_matched[j] && (how == JoinType::kRight || how == JoinType::kFull)) {
      rows.push_back("null|null|" + right_text(right[j]));
    }
    if ((right_matched[j] && how == JoinType::kRightSemi) ||
        (!right_matched[j] && how == JoinType::kRightAnti)) {
      rows.push_back(right_text(right[j]));
    }
  }
  std::sort(rows.begin(), rows.end());
  return rows;
}

std::vector<Row> RandomRows(uint64_t seed, int n, int key_range, int null_every) {
  std::mt19937_64 rng(seed);
  std::vector<Row> rows;
  for (int i = 0; i < n; ++i) {
    Row row;
    if (rng() % null_every != 0) row.key = static_cast<int64_t>(rng() % key_range);
    row.payload = static_cast<int64_t>(seed * 100000 + i);
    rows.push_back(row);
  }
  return rows;
}

// `rows` as batches of up to `batch_rows` rows with columns (k: key_type, payload_name: int64).
std::vector<std::shared_ptr<arrow::RecordBatch>> Batches(
    const std::vector<Row>& rows, const std::string& payload_name, int batch_rows,
    const std::shared_ptr<arrow::DataType>& key_type = arrow::int64()) {
  auto schema = arrow::schema({arrow::field("k", key_type), arrow::field(payload_name, arrow::int64())});
  std::vector<std::shared_ptr<arrow::RecordBatch>> batches;
  for (size_t start = 0; start < rows.size(); start += batch_rows) {
    const size_t end = std::min(rows.size(), start + batch_rows);
    arrow::Int64Builder keys64;
    arrow::Int32Builder keys32;
    arrow::Int64Builder payload;
    for (size_t i = start; i < end; ++i) {
      if (key_type->id() == arrow::Type::INT32) {
        EXPECT_OK(rows[i].key ? keys32.Append(static_cast<int32_t>(*rows[i].key))
                              : keys32.AppendNull());
      } else {
        EXPECT_OK(rows[i].key ? keys64.Append(*rows[i].key) : keys64.AppendNull());
      }
      EXPECT_OK(payload.Append(rows[i].payload));
    }
    std::shared_ptr<arrow::Array> keys = key_type->id() == arrow::Type::INT32
                                             ? keys32.Finish().ValueOrDie()
                                             : keys64.Finish().ValueOrDie();
    batches.push_back(arrow::RecordBatch::Make(schema, static_cast<int64_t>(end - start),
                                               {keys, payload.Finish().ValueOrDie()}));
  }
  return batches;
}

OperatorSpec JoinSpec(JoinParams params) {
  OperatorSpec spec;
  spec.id = 3;
  spec.name = "joiner";
  spec.params = std::move(params);
  return spec;
}

// Binds the join, feeds every batch of both sides (interleaved) to one instance, finishes it.
arrow::Result<std::vector<std::shared_ptr<arrow::RecordBatch>>> RunJoin(
    const JoinParams& params, const std::vector<std::shared_ptr<arrow::RecordBatch>>& left,
    const std::vector<std::shared_ptr<arrow::RecordBatch>>& right,
    std::shared_ptr<arrow::Schema> left_schema, std::shared_ptr<arrow::Schema> right_schema,
    std::shared_ptr<arrow::Schema>* output_schema = nullptr, int64_t state_budget = 0,
    const std::string& spill_directory = "", int64_t* spilled_bytes = nullptr,
    int64_t restart_at = -1) {
  const OperatorSpec spec = JoinSpec(params);
  ARROW_ASSIGN_OR_RAISE(BoundOperator bound,
                        BindOperator(spec, {left_schema, right_schema}, BindOptions{}));
  if (output_schema != nullptr) *output_schema = bound.output_schema;
  TaskContext task;
  task.spec = &spec;
  task.state_budget_bytes = state_budget;
  task.spill_directory = spill_directory;
  ARROW_ASSIGN_OR_RAISE(auto op, bound.make_operator(task));
  Collector out;
  int64_t spilled = 0;
  for (size_t i = 0; i < std::max(left.size(), right.size()); ++i) {
    if (static_cast<int64_t>(i) == restart_at) {
      // A checkpoint and a restart from it: a new instance restored from the snapshot goes on.
      testing::MemoryState parts;
      ARROW_RETURN_NOT_OK(op->Snapshot(1, &parts));
      if (i < right.size()) ARROW_RETURN_NOT_OK(op->Process(1, right[i], &out));
      if (!parts.Unchanged()) return arrow::Status::Invalid("a snapshot changed after Put");
      spilled += op->state_spilled_bytes();
      op->Abort();
      ARROW_ASSIGN_OR_RAISE(op, bound.make_operator(task));
      ARROW_RETURN_NOT_OK(op->Restore(1, &parts));
    }
    if (i < right.size()) ARROW_RETURN_NOT_OK(op->Process(1, right[i], &out));
    if (i < left.size()) ARROW_RETURN_NOT_OK(op->Process(0, left[i], &out));
  }
  if (!out.batches.empty()) return arrow::Status::Invalid("the join emitted before Finish");
  ARROW_RETURN_NOT_OK(op->Finish(&out));
  int64_t rows = 0;
  for (const auto& batch : out.batches) {
    if (!batch->schema()->Equals(*bound.output_schema)) {
      return arrow::Status::Invalid("batch schema ", batch->schema()->ToString(),
                                    " is not the bound output schema");
    }
    rows += batch->num_rows();
  }
  if (restart_at < 0 && rows != op->rows_out()) {
    return arrow::Status::Invalid("rows_out disagrees");
  }
  if (spilled_bytes != nullptr) *spilled_bytes = spilled + op->state_spilled_bytes();
  return out.batches;
}

std::shared_ptr<arrow::Schema> Side(const std::string& payload,
                                    std::shared_ptr<arrow::DataType> key = arrow::int64()) {
  return arrow::schema({arrow::field("k", std::move(key)), arrow::field(payload, arrow::int64())});
}

constexpr JoinType kAllTypes[] = {JoinType::kInner,     JoinType::kLeft,      JoinType::kRight,
                                  JoinType::kFull,      JoinType::kSemi,      JoinType::kAnti,
                                  JoinType::kRightSemi, JoinType::kRightAnti};

TEST(JoinOperatorTest, EveryTypeEqualsNestedLoopWithNullsAndDuplicates) {
  for (uint64_t seed : {1, 2, 3}) {
    // Keys 0..11 with duplicates on both sides, one in 5 keys null; some keys on one side only.
    const auto left = RandomRows(seed, 300, 12, 5);
    const auto right = RandomRows(seed + 10, 120, 16, 5);
    for (JoinType how : kAllTypes) {
      SCOPED_TRACE(std::string(JoinTypeName(how)) + " seed " + std::to_string(seed));
      ASSERT_OK_AND_ASSIGN(
          auto batches,
          RunJoin(JoinParams{{"k"}, {"k"}, how}, Batches(left, "lp", 37),
                  Batches(right, "rp", 11), Side("lp"), Side("rp")));
      const auto expected = Reference(how, left, right);
      ASSERT_FALSE(expected.empty());
      EXPECT_EQ(Rows(batches), expected);
    }
  }
}

// `rows` with nine in ten keys replaced by `key`.
std::vector<Row> Skewed(std::vector<Row> rows, int64_t key) {
  for (size_t i = 0; i < rows.size(); ++i) {
    if (i % 10 != 0) rows[i].key = key;
  }
  return rows;
}

TEST(JoinOperatorTest, SkewedKeys) {
  // Nine in ten rows of both sides share key 0: a 450 x 90 block of matches.
  const std::vector<Row> left = Skewed(RandomRows(7, 500, 50, 1000), 0);
  const std::vector<Row> right = Skewed(RandomRows(8, 100, 50, 1000), 0);
  for (JoinType how : {JoinType::kInner, JoinType::kFull, JoinType::kAnti}) {
    SCOPED_TRACE(JoinTypeName(how));
    ASSERT_OK_AND_ASSIGN(auto batches, RunJoin(JoinParams{{"k"}, {"k"}, how},
                                               Batches(left, "lp", 64), Batches(right, "rp", 64),
                                               Side("lp"), Side("rp")));
    EXPECT_EQ(Rows(batches), Reference(how, left, right));
  }
}

TEST(JoinOperatorTest, AKeyMatchingMoreRowsThanAnOutputBatchIsEmittedInPieces) {
  // 3000 x 100 rows of key 0 plus a few other keys: 300,000 pairs from single input batches,
  // several output batches of at most 64K rows each, every pair once.
  std::vector<Row> left = RandomRows(51, 3100, 5, 1000);
  std::vector<Row> right = RandomRows(52, 120, 5, 1000);
  for (size_t i = 0; i < 3000; ++i) left[i].key = 0;
  for (size_t i = 0; i < 100; ++i) right[i].key = 0;
  for (JoinType how : {JoinType::kInner, JoinType::kLeft, JoinType::kFull}) {
    SCOPED_TRACE(JoinTypeName(how));
    ASSERT_OK_AND_ASSIGN(auto batches, RunJoin(JoinParams{{"k"}, {"k"}, how},
                                               Batches(left, "lp", 3100),
                                               Batches(right, "rp", 120), Side("lp"), Side("rp")));
    EXPECT_GE(batches.size(), 5u);
    for (const auto& batch : batches) EXPECT_LE(batch->num_rows(), 64 * 1024);
    EXPECT_EQ(Rows(batches), Reference(how, left, right));
  }
}

TEST(JoinOperatorTest, EmptySides) {
  const auto rows = RandomRows(5, 50, 10, 4);
  for (JoinType how : kAllTypes) {
    SCOPED_TRACE(JoinTypeName(how));
    ASSERT_OK_AND_ASSIGN(auto no_right, RunJoin(JoinParams{{"k"}, {"k"}, how},
                                                Batches(rows, "lp", 16), {}, Side("lp"),
                                                Side("rp")));
    EXPECT_EQ(Rows(no_right), Reference(how, rows, {}));
    ASSERT_OK_AND_ASSIGN(auto no_left, RunJoin(JoinParams{{"k"}, {"k"}, how}, {},
                                               Batches(rows, "rp", 16), Side("lp"), Side("rp")));
    EXPECT_EQ(Rows(no_left), Reference(how, {}, rows));
    ASSERT_OK_AND_ASSIGN(auto none, RunJoin(JoinParams{{"k"}, {"k"}, how}, {}, {}, Side("lp"),
                                            Side("rp")));
    EXPECT_TRUE(Rows(none).empty());
  }
}

// A fresh directory for spill files, removed at the end of the test.
class SpillDirectoryForTest {
 public:
  SpillDirectoryForTest() {
    static int next = 0;
    path_ = std::filesystem::temp_directory_path() /
            ("sabot-join-test-" + std::to_string(::getpid()) + "-" + std::to_string(next++));
    std::filesystem::create_directories(path_);
  }
  ~SpillDirectoryForTest() { std::filesystem::remove_all(path_); }
  std::string path() const { return path_.string(); }
  // Files and directories left under it.
  int64_t entries() const {
    int64_t n = 0;
    for ([[maybe_unused]] const auto& entry :
         std::filesystem::recursive_directory_iterator(path_)) {
      ++n;
    }
    return n;
  }

 private:
  std::filesystem::path path_;
};

TEST(JoinOperatorTest, EveryTypeUnderATinyBudgetSpillsAndEqualsNestedLoop) {
  // 4000 x 1500 rows (int32 keys on the left widened to the right's int64) under a 4 KiB state
  // budget: both inputs spill to partitions that split again, every join type stays exact.
  const auto left = RandomRows(21, 4000, 900, 7);
  const auto right = RandomRows(22, 1500, 1200, 7);
  for (JoinType how : kAllTypes) {
    SCOPED_TRACE(JoinTypeName(how));
    SpillDirectoryForTest directory;
    int64_t spilled = 0;
    ASSERT_OK_AND_ASSIGN(
        auto batches,
        RunJoin(JoinParams{{"k"}, {"k"}, how}, Batches(left, "lp", 97, arrow::int32()),
                Batches(right, "rp", 41), Side("lp", arrow::int32()), Side("rp"), nullptr,
                4096, directory.path(), &spilled));
    const auto expected = Reference(how, left, right);
    ASSERT_FALSE(expected.empty());
    EXPECT_EQ(Rows(batches), expected);
    // Every input row was written at least once (more than the budget).
    EXPECT_GT(spilled, 4096 * 4);
    EXPECT_EQ(directory.entries(), 0) << "spill files left after Finish";
  }
}

// A hash join snapshotted mid-input (buffered rows, or grace-spilled partitions read back) and
// restored into a new instance fed the rest gives the nested-loop reference, every join type.
TEST(JoinOperatorTest, RestoredFromASnapshotItJoinsEveryRow) {
  const auto left = RandomRows(31, 1200, 300, 7);
  const auto right = RandomRows(32, 600, 400, 7);
  for (int64_t budget : {int64_t{0}, int64_t{4096}}) {
    for (JoinType how : {JoinType::kInner, JoinType::kFull, JoinType::kAnti}) {
      SCOPED_TRACE(std::string(JoinTypeName(how)) + " budget " + std::to_string(budget));
      SpillDirectoryForTest directory;
      int64_t spilled = 0;
      ASSERT_OK_AND_ASSIGN(
          auto batches,
          RunJoin(JoinParams{{"k"}, {"k"}, how}, Batches(left, "lp", 97, arrow::int32()),
                  Batches(right, "rp", 41), Side("lp", arrow::int32()), Side("rp"), nullptr,
                  budget, directory.path(), &spilled, /*restart_at=*/6));
      EXPECT_EQ(Rows(batches), Reference(how, left, right));
      EXPECT_EQ(spilled > 0, budget > 0);
      EXPECT_EQ(directory.entries(), 0) << "spill files left";
    }
  }
}

TEST(JoinOperatorTest, AHotKeyThatCannotSplitIsJoinedOverTheBudget) {
  // Nine in ten rows of both sides share key 3: its partition never splits; joined anyway.
  const std::vector<Row> left = Skewed(RandomRows(31, 1200, 200, 50), 3);
  const std::vector<Row> right = Skewed(RandomRows(32, 300, 200, 50), 3);
  for (JoinType how : {JoinType::kInner, JoinType::kFull, JoinType::kRightAnti}) {
    SCOPED_TRACE(JoinTypeName(how));
    SpillDirectoryForTest directory;
    int64_t spilled = 0;
    ASSERT_OK_AND_ASSIGN(auto batches,
                         RunJoin(JoinParams{{"k"}, {"k"}, how}, Batches(left, "lp", 64),
                                 Batches(right, "rp", 64), Side("lp"), Side("rp"), nullptr,
                                 2048, directory.path(), &spilled));
    EXPECT_EQ(Rows(batches), Reference(how, left, right));
    EXPECT_GT(spilled, 0);
    EXPECT_EQ(directory.entries(), 0);
  }
}

TEST(JoinOperatorTest, AbortRemovesSpillFiles) {
  const OperatorSpec spec = JoinSpec(JoinParams{{"k"}, {"k"}});
  ASSERT_OK_AND_ASSIGN(BoundOperator bound,
                       BindOperator(spec, {Side("lp"), Side("rp")}, BindOptions{}));
  SpillDirectoryForTest directory;
  TaskContext task;
  task.spec = &spec;
  task.state_budget_bytes = 1024;
  task.spill_directory = directory.path();
  ASSERT_OK_AND_ASSIGN(auto op, bound.make_operator(task));
  Collector out;
  for (const auto& batch : Batches(RandomRows(41, 2000, 500, 9), "lp", 100)) {
    ASSERT_OK(op->Process(0, batch, &out));
  }
  EXPECT_GT(directory.entries(), 0) << "nothing spilled";
  op->Abort();
  EXPECT_EQ(directory.entries(), 0) << "spill files left after Abort";
}

TEST(JoinOperatorTest, OutputColumnsAndRenames) {
  auto left = arrow::schema({arrow::field("k", arrow::int64()), arrow::field("a", arrow::utf8()),
                             arrow::field("a_right", arrow::int64())});
  auto right = arrow::schema({arrow::field("id", arrow::int64()), arrow::field("a", arrow::utf8()),
                              arrow::field("k", arrow::float64())});
  ASSERT_OK_AND_ASSIGN(auto inner, JoinOutputSchema(JoinParams{{"k"}, {"id"}}, left, right));
  std::vector<std::string> names;
  for (const auto& f : inner->fields()) names.push_back(f->name());
  EXPECT_EQ(names, (std::vector<std::string>{"k", "a", "a_right", "id", "a_right_right",
                                             "k_right"}));
  EXPECT_TRUE(inner->field(5)->type()->Equals(arrow::float64()));
  ASSERT_OK_AND_ASSIGN(auto semi,
                       JoinOutputSchema(JoinParams{{"k"}, {"id"}, JoinType::kSemi}, left, right));
  EXPECT_TRUE(semi->Equals(*arrow::schema(left->fields())));
  ASSERT_OK_AND_ASSIGN(
      auto right_anti,
      JoinOutputSchema(JoinParams{{"k"}, {"id"}, JoinType::kRightAnti}, left, right));
  EXPECT_EQ(right_anti->num_fields(), 3);
  EXPECT_EQ(right_anti->field(2)->name(), "k");  // not renamed: no left column in the output
}

TEST(JoinOperatorTest, WidenedKeyTypesJoinAndKeepTheirTypes) {
  const auto left = RandomRows(11, 200, 20, 6);
  const auto right = RandomRows(12, 80, 20, 6);
  for (JoinType how : {JoinType::kInner, JoinType::kFull, JoinType::kSemi}) {
    SCOPED_TRACE(JoinTypeName(how));
    std::shared_ptr<arrow::Schema> output;
    ASSERT_OK_AND_ASSIGN(
        auto batches,
        RunJoin(JoinParams{{"k"}, {"k"}, how}, Batches(left, "lp", 50, arrow::int32()),
                Batches(right, "rp", 30), Side("lp", arrow::int32()), Side("rp"), &output));
    EXPECT_EQ(Rows(batches), Reference(how, left, right));
    EXPECT_TRUE(output->field(0)->type()->Equals(arrow::int32()));
    EXPECT_EQ(output->GetFieldIndex("__sabot_join_key_0"), -1);
    if (how != JoinType::kSemi) {
      EXPECT_TRUE(output->GetFieldByName("k_right")->type()->Equals(arrow::int64()));
    }
  }
}

// docs/hashing.md: -0.0 and 0.0 are one key and all NaNs are one key, for float64 with float64
// and float64 with float32 keys; the output keeps each input's own key values (-0.0 stays -0.0).
TEST(JoinOperatorTest, NegativeZeroAndZeroAreOneKeyAndSoAreAllNaNs) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const std::vector<double> left_keys = {0.0, -0.0, nan, std::nan("7"), 1.5, -nan};
  const std::vector<double> right_keys = {-0.0, 0.0, -nan, 1.5, 2.5};
  for (const auto& right_type : {arrow::float64(), arrow::float32()}) {
    SCOPED_TRACE(right_type->ToString());
    arrow::DoubleBuilder lk;
    arrow::Int64Builder lp, rp;
    ASSERT_OK(lk.AppendValues(left_keys));
    ASSERT_OK(lk.AppendNull());
    for (size_t i = 0; i <= left_keys.size(); ++i) ASSERT_OK(lp.Append(static_cast<int64_t>(i)));
    std::shared_ptr<arrow::Array> rk;
    if (right_type->id() == arrow::Type::DOUBLE) {
      arrow::DoubleBuilder b;
      ASSERT_OK(b.AppendValues(right_keys));
      ASSERT_OK_AND_ASSIGN(rk, b.Finish());
    } else {
      arrow::FloatBuilder b;
      for (double v : right_keys) ASSERT_OK(b.Append(static_cast<float>(v)));
      ASSERT_OK_AND_ASSIGN(rk, b.Finish());
    }
    for (size_t i = 0; i < right_keys.size(); ++i) ASSERT_OK(rp.Append(static_cast<int64_t>(i)));
    auto left_schema = Side("lp", arrow::float64());
    auto right_schema = Side("rp", right_type);
    auto left = arrow::RecordBatch::Make(left_schema, left_keys.size() + 1,
                                         {*lk.Finish(), *lp.Finish()});
    auto right = arrow::RecordBatch::Make(right_schema, right_keys.size(), {rk, *rp.Finish()});
    ASSERT_OK_AND_ASSIGN(auto batches, RunJoin(JoinParams{{"k"}, {"k"}, JoinType::kInner},
                                               {left}, {right}, left_schema, right_schema));
    // Pairs "left payload|right payload|sign bit of the left key", by value equality.
    std::vector<std::string> expected, got;
    for (size_t l = 0; l < left_keys.size(); ++l) {
      for (size_t r = 0; r < right_keys.size(); ++r) {
        const double a = left_keys[l], b = right_keys[r];
        if (a == b || (std::isnan(a) && std::isnan(b))) {
          expected.push_back(std::to_string(l) + "|" + std::to_string(r) + "|" +
                             std::to_string(std::signbit(a)));
        }
      }
    }
    for (const auto& batch : batches) {
      const auto& keys = static_cast<const arrow::DoubleArray&>(*batch->column(0));
      for (int64_t i = 0; i < batch->num_rows(); ++i) {
        got.push_back(Cell(*batch->column(1), i) + "|" + Cell(*batch->column(3), i) + "|" +
                      std::to_string(std::signbit(keys.Value(i))));
      }
    }
    std::sort(expected.begin(), expected.end());
    std::sort(got.begin(), got.end());
    EXPECT_EQ(expected.size(), 8u);
    EXPECT_EQ(got, expected);
  }
}

TEST(JoinOperatorTest, KeyTypePairs) {
  auto one = [](std::shared_ptr<arrow::DataType> type) {
    return arrow::schema({arrow::field("k", std::move(type))});
  };
  auto check = [&](std::shared_ptr<arrow::DataType> l, std::shared_ptr<arrow::DataType> r) {
    return JoinOutputSchema(JoinParams{{"k"}, {"k"}}, one(std::move(l)), one(std::move(r)))
        .status();
  };
  EXPECT_OK(check(arrow::uint8(), arrow::uint32()));
  EXPECT_OK(check(arrow::int16(), arrow::uint32()));
  EXPECT_OK(check(arrow::float32(), arrow::float64()));
  EXPECT_OK(check(arrow::utf8(), arrow::large_utf8()));
  EXPECT_OK(check(arrow::dictionary(arrow::int32(), arrow::utf8()), arrow::utf8()));
  ASSERT_RAISES_WITH(TypeError, "uint64", check(arrow::int32(), arrow::uint64()));
  ASSERT_RAISES_WITH(TypeError, "cannot be joined", check(arrow::int64(), arrow::float64()));
  ASSERT_RAISES_WITH(TypeError, "cannot be joined", check(arrow::utf8(), arrow::binary()));
  ASSERT_RAISES_WITH(TypeError, "cannot be joined",
                     check(arrow::timestamp(arrow::TimeUnit::MILLI),
                           arrow::timestamp(arrow::TimeUnit::SECOND)));
}

TEST(JoinOperatorTest, BindingErrorsNameTheOperator) {
  const OperatorSpec spec = JoinSpec(JoinParams{{"k"}, {"missing"}});
  ASSERT_RAISES_WITH(KeyError, "operator 'joiner' (join): no column 'missing' in the right input",
                     BindOperator(spec, {Side("lp"), Side("rp")}, BindOptions{}).status());
  ASSERT_RAISES_WITH(Invalid, "expected 2 input schema(s)",
                     BindOperator(JoinSpec(JoinParams{{"k"}, {"k"}}), {Side("lp")}, BindOptions{})
                         .status());
  OperatorPlanContext unbounded;
  unbounded.bounded_input = false;
  ASSERT_RAISES_WITH(NotImplemented, "bounded inputs",
                     BindOperator(JoinSpec(JoinParams{{"k"}, {"k"}}), {Side("lp"), Side("rp")},
                                  BindOptions{}, unbounded)
                         .status());
  auto nested = arrow::schema(
      {arrow::field("k", arrow::int64()), arrow::field("l", arrow::list(arrow::int64()))});
  ASSERT_RAISES_WITH(NotImplemented, "Acero",
                     BindOperator(JoinSpec(JoinParams{{"k"}, {"k"}}), {nested, Side("rp")},
                                  BindOptions{})
                         .status());
}

TEST(JoinOperatorTest, HoldsTheWatermarkUntilItsEnd) {
  // Its rows all come at Finish: a watermark passed on before would make them late downstream.
  const OperatorSpec spec = JoinSpec(JoinParams{{"k"}, {"k"}});
  ASSERT_OK_AND_ASSIGN(BoundOperator bound,
                       BindOperator(spec, {Side("lp"), Side("rp")}, BindOptions{}));
  TaskContext task;
  task.spec = &spec;
  ASSERT_OK_AND_ASSIGN(auto op, bound.make_operator(task));
  Collector out;
  class CountWatermarks : public OperatorOutput {
   public:
    arrow::Status Emit(const std::shared_ptr<arrow::RecordBatch>&) override {
      return arrow::Status::OK();
    }
    arrow::Status EmitWatermark(WatermarkMs) override {
      ++count;
      return arrow::Status::OK();
    }
    int count = 0;
  } watermarks;
  ASSERT_OK(op->Process(0, Batches(RandomRows(1, 10, 3, 5), "lp", 10)[0], &watermarks));
  ASSERT_OK(op->OnWatermark(1000, &watermarks));
  ASSERT_OK(op->OnWatermark(5000, &watermarks));
  EXPECT_EQ(watermarks.count, 0);
}

TEST(JoinOperatorTest, KeepsNoReferenceToItsInputBatches) {
  // The batches a task receives may live in the shuffle's budget: the join copies them.
  const OperatorSpec spec = JoinSpec(JoinParams{{"k"}, {"k"}});
  ASSERT_OK_AND_ASSIGN(BoundOperator bound,
                       BindOperator(spec, {Side("lp"), Side("rp")}, BindOptions{}));
  TaskContext task;
  task.spec = &spec;
  ASSERT_OK_AND_ASSIGN(auto op, bound.make_operator(task));
  Collector out;
  auto batch = Batches(RandomRows(3, 100, 10, 4), "lp", 100)[0];
  // A slice, as a reader's batch may be.
  auto slice = batch->Slice(10, 50);
  ASSERT_OK(op->Process(0, slice, &out));
  slice.reset();
  const auto& buffers = batch->column_data(0)->buffers;
  for (const auto& buffer : buffers) {
    if (buffer != nullptr) {
      EXPECT_EQ(buffer.use_count(), 1);
    }
  }
  EXPECT_EQ(op->rows_in(), 50);
  op->Abort();
}

// ---------------------------------------------------------------------------------------------
// Window and interval joins.

struct TimedRow {
  std::optional<int64_t> key;
  int64_t t = 0;  // event time, ms
  int64_t payload = 0;
};

// Rows whose event times advance by `step` ms per row with up to `disorder` - 1 ms of disorder.
std::vector<TimedRow> TimedRows(uint64_t seed, int n, int keys, int64_t step, int64_t disorder) {
  std::mt19937_64 rng(seed);
  std::vector<TimedRow> rows;
  for (int i = 0; i < n; ++i) {
    TimedRow row;
    if (rng() % 10 != 0) row.key = static_cast<int64_t>(rng() % keys);
    row.t = 1'700'000'000'000 + i * step + static_cast<int64_t>(rng() % disorder);
    row.payload = static_cast<int64_t>(seed * 100000 + i);
    rows.push_back(row);
  }
  return rows;
}

std::shared_ptr<arrow::Schema> TimedSide(const std::string& payload) {
  return arrow::schema({arrow::field("k", arrow::int64()),
                        arrow::field("t", arrow::timestamp(arrow::TimeUnit::MILLI)),
                        arrow::field(payload, arrow::int64())});
}

std::shared_ptr<arrow::RecordBatch> TimedBatch(const std::vector<TimedRow>& rows, size_t begin,
                                               size_t end, const std::string& payload) {
  arrow::Int64Builder keys, payloads;
  arrow::TimestampBuilder times(arrow::timestamp(arrow::TimeUnit::MILLI),
                                arrow::default_memory_pool());
  for (size_t i = begin; i < end; ++i) {
    EXPECT_OK(rows[i].key ? keys.Append(*rows[i].key) : keys.AppendNull());
    EXPECT_OK(times.Append(rows[i].t));
    EXPECT_OK(payloads.Append(rows[i].payload));
  }
  return arrow::RecordBatch::Make(TimedSide(payload), static_cast<int64_t>(end - begin),
                                  {keys.Finish().ValueOrDie(), times.Finish().ValueOrDie(),
                                   payloads.Finish().ValueOrDie()});
}

int64_t FloorTo(int64_t t, int64_t size) { return t - (((t % size) + size) % size); }

// The nested-loop window / interval join, output as the join's columns k|t|lp|k_right|t_right|rp
// (times as their ms since the epoch).
std::vector<std::string> TimedReference(const JoinParams& p, const std::vector<TimedRow>& left,
                                        const std::vector<TimedRow>& right) {
  std::vector<std::string> rows;
  for (const TimedRow& l : left) {
    for (const TimedRow& r : right) {
      if (!l.key || !r.key || *l.key != *r.key) continue;
      const bool match =
          p.time == JoinTime::kWindow
              ? FloorTo(l.t, p.window.count()) == FloorTo(r.t, p.window.count())
              : l.t - p.before.count() <= r.t && r.t <= l.t + p.after.count();
      if (!match) continue;
      rows.push_back(std::to_string(*l.key) + "|" + std::to_string(l.t) + "|" +
                     std::to_string(l.payload) + "|" + std::to_string(*r.key) + "|" +
                     std::to_string(r.t) + "|" + std::to_string(r.payload));
    }
  }
  std::sort(rows.begin(), rows.end());
  return rows;
}

// Rows as the reference writes them: timestamps as their integer value.
std::vector<std::string> TimedRows(const std::vector<std::shared_ptr<arrow::RecordBatch>>& batches) {
  std::vector<std::shared_ptr<arrow::RecordBatch>> viewed;
  for (const auto& batch : batches) {
    arrow::ArrayVector columns;
    arrow::FieldVector fields;
    for (int c = 0; c < batch->num_columns(); ++c) {
      auto column = batch->column(c);
      if (column->type_id() == arrow::Type::TIMESTAMP) column = column->View(arrow::int64()).ValueOrDie();
      columns.push_back(column);
      fields.push_back(arrow::field(batch->schema()->field(c)->name(), column->type()));
    }
    viewed.push_back(arrow::RecordBatch::Make(arrow::schema(fields), batch->num_rows(), columns));
  }
  return Rows(viewed);
}

// Feeds both sides in batches of `batch_rows`, alternating, with the watermark a source with
// `disorder` would give after each batch (the minimum over both inputs), then the end of time.
arrow::Result<std::vector<std::shared_ptr<arrow::RecordBatch>>> RunTimedJoin(
    const JoinParams& params, const std::vector<TimedRow>& left,
    const std::vector<TimedRow>& right, size_t batch_rows, int64_t disorder,
    std::vector<WatermarkMs>* watermarks_out = nullptr, int64_t state_budget = 0,
    int64_t* spilled_out = nullptr, int64_t restart_at = -1) {
  const OperatorSpec spec = JoinSpec(params);
  OperatorPlanContext unbounded;
  unbounded.bounded_input = false;
  ARROW_ASSIGN_OR_RAISE(BoundOperator bound, BindOperator(spec, {TimedSide("lp"), TimedSide("rp")},
                                                          BindOptions{}, unbounded));
  TaskContext task;
  task.spec = &spec;
  task.state_budget_bytes = state_budget;
  ARROW_ASSIGN_OR_RAISE(auto op, bound.make_operator(task));
  Collector out;
  class Watermarks : public OperatorOutput {
   public:
    explicit Watermarks(Collector* rows) : rows_(rows) {}
    arrow::Status Emit(const std::shared_ptr<arrow::RecordBatch>& b) override {
      // No row emitted after a watermark may be below it, in either time column.
      for (const char* column : {"t", "t_right"}) {
        auto times = b->GetColumnByName(column)->View(arrow::int64()).ValueOrDie();
        const auto& values = static_cast<const arrow::Int64Array&>(*times);
        for (int64_t i = 0; i < values.length(); ++i) {
          if (!seen.empty() && values.Value(i) < seen.back()) ++behind_watermark;
        }
      }
      return rows_->Emit(b);
    }
    arrow::Status EmitWatermark(WatermarkMs w) override {
      seen.push_back(w);
      return arrow::Status::OK();
    }
    std::vector<WatermarkMs> seen;
    int64_t behind_watermark = 0;

   private:
    Collector* rows_;
  } sink(&out);
  int64_t max_left = std::numeric_limits<int64_t>::min();
  int64_t max_right = std::numeric_limits<int64_t>::min();
  int64_t spilled = 0;
  for (size_t i = 0; i < std::max(left.size(), right.size()); i += batch_rows) {
    if (static_cast<int64_t>(i) == restart_at) {
      // A checkpoint here and a restart from it: a new instance restored from the snapshot
      // (which the old instance must not change afterwards) takes over.
      testing::MemoryState parts;
      ARROW_RETURN_NOT_OK(op->Snapshot(1, &parts));
      spilled += op->state_spilled_bytes();
      op->Abort();
      if (!parts.Unchanged()) return arrow::Status::Invalid("a snapshot changed after Put");
      ARROW_ASSIGN_OR_RAISE(op, bound.make_operator(task));
      ARROW_RETURN_NOT_OK(op->Restore(1, &parts));
    }
    for (int side = 0; side < 2; ++side) {
      const auto& rows = side == 0 ? left : right;
      if (i >= rows.size()) continue;
      const size_t end = std::min(rows.size(), i + batch_rows);
      ARROW_RETURN_NOT_OK(op->Process(side, TimedBatch(rows, i, end, side == 0 ? "lp" : "rp"), &sink));
      for (size_t r = i; r < end; ++r) (side == 0 ? max_left : max_right) = std::max(side == 0 ? max_left : max_right, rows[r].t);
    }
    const int64_t low = std::min(max_left, max_right);
    if (low != std::numeric_limits<int64_t>::min()) {
      ARROW_RETURN_NOT_OK(op->OnWatermark(low - disorder, &sink));
    }
  }
  ARROW_RETURN_NOT_OK(op->OnWatermark(kEndOfTimeWatermark, &sink));
  ARROW_RETURN_NOT_OK(op->Finish(&sink));
  if (spilled_out != nullptr) *spilled_out = spilled + op->state_spilled_bytes();
  if (watermarks_out != nullptr) *watermarks_out = sink.seen;
  if (sink.behind_watermark > 0) {
    return arrow::Status::Invalid(sink.behind_watermark,
                                  " emitted event times are below a watermark passed on before");
  }
  return out.batches;
}

JoinParams WindowJoin(int64_t size_ms) {
  JoinParams p{{"k"}, {"k"}};
  p.time = JoinTime::kWindow;
  p.left_time = p.right_time = "t";
  p.window = std::chrono::milliseconds(size_ms);
  return p;
}

JoinParams IntervalJoin(int64_t before_ms, int64_t after_ms) {
  JoinParams p{{"k"}, {"k"}};
  p.time = JoinTime::kInterval;
  p.left_time = p.right_time = "t";
  p.before = std::chrono::milliseconds(before_ms);
  p.after = std::chrono::milliseconds(after_ms);
  return p;
}

// Times finer than milliseconds are compared in their own unit, not truncated to ms (an
// interval of 0 joins equal times only), and windows floor times before 1970 (-500 us is in
// [-1 s, 0), +100 us in [0, 1 s)); a ns side against a us side compares in ns.
TEST(TimeJoinTest, SubMillisecondTimesAreComparedInTheirOwnUnit) {
  auto side = [](const std::string& payload, arrow::TimeUnit::type unit) {
    return arrow::schema({arrow::field("k", arrow::int64()),
                          arrow::field("t", arrow::timestamp(unit)),
                          arrow::field(payload, arrow::int64())});
  };
  auto batch = [](const std::shared_ptr<arrow::Schema>& schema,
                  const std::vector<std::pair<int64_t, int64_t>>& key_time) {
    arrow::Int64Builder k, p;
    arrow::TimestampBuilder t(schema->field(1)->type(), arrow::default_memory_pool());
    for (const auto& [key, time] : key_time) {
      EXPECT_OK(k.Append(key));
      EXPECT_OK(t.Append(time));
      EXPECT_OK(p.Append(key));
    }
    return arrow::RecordBatch::Make(schema, static_cast<int64_t>(key_time.size()),
                                    {*k.Finish(), *t.Finish(), *p.Finish()});
  };
  // The keys of the pairs a join of `left` and `right` gives.
  auto run = [&](const JoinParams& params, arrow::TimeUnit::type right_unit,
                 const std::vector<std::pair<int64_t, int64_t>>& left,
                 const std::vector<std::pair<int64_t, int64_t>>& right)
      -> arrow::Result<std::vector<std::string>> {
    const OperatorSpec spec = JoinSpec(params);
    OperatorPlanContext unbounded;
    unbounded.bounded_input = false;
    auto l = side("lp", arrow::TimeUnit::MICRO);
    auto r = side("rp", right_unit);
    ARROW_ASSIGN_OR_RAISE(BoundOperator bound, BindOperator(spec, {l, r}, BindOptions{}, unbounded));
    TaskContext task;
    task.spec = &spec;
    ARROW_ASSIGN_OR_RAISE(auto op, bound.make_operator(task));
    Collector out;
    ARROW_RETURN_NOT_OK(op->Process(0, batch(l, left), &out));
    ARROW_RETURN_NOT_OK(op->Process(1, batch(r, right), &out));
    ARROW_RETURN_NOT_OK(op->OnWatermark(kEndOfTimeWatermark, &out));
    ARROW_RETURN_NOT_OK(op->Finish(&out));
    std::vector<std::string> keys;
    for (const auto& b : out.batches) {
      for (int64_t i = 0; i < b->num_rows(); ++i) keys.push_back(Cell(*b->column(0), i));
    }
    std::sort(keys.begin(), keys.end());
    return keys;
  };
  using Keys = std::vector<std::string>;
  // Key 1: 399 us apart; key 2: equal times.
  ASSERT_OK_AND_ASSIGN(auto got1, run(IntervalJoin(0, 0), arrow::TimeUnit::MICRO, {{1, 400}, {2, 1000}},
                         {{1, 799}, {2, 1000}}));
  EXPECT_EQ(got1, Keys{"2"});
  // The same in ns on the right; key 3: 1 ns later than the left time.
  ASSERT_OK_AND_ASSIGN(auto got2, run(IntervalJoin(0, 0), arrow::TimeUnit::NANO, {{1, 400}, {2, 1000}, {3, 5}},
                         {{1, 799000}, {2, 1000000}, {3, 5001}}));
  EXPECT_EQ(got2, Keys{"2"});
  // Key 3: -500 us and +100 us; key 4: -500 us and -999 ms, both in [-1 s, 0).
  ASSERT_OK_AND_ASSIGN(auto got3, run(WindowJoin(1000), arrow::TimeUnit::MICRO, {{3, -500}, {4, -500}},
                         {{3, 100}, {4, -999000}}));
  EXPECT_EQ(got3, Keys{"4"});
}

TEST(TimeJoinTest, OutOfOrderInputEqualsNestedLoop) {
  constexpr int64_t kDisorder = 500;
  for (uint64_t seed : {1, 2}) {
    // Left rows every 10 ms, right rows every 25 ms, both up to 499 ms out of order.
    const auto left = TimedRows(seed, 600, 8, 10, kDisorder);
    const auto right = TimedRows(seed + 50, 240, 8, 25, kDisorder);
    for (const JoinParams& params : {WindowJoin(1000), WindowJoin(70), IntervalJoin(0, 0),
                                     IntervalJoin(300, 120), IntervalJoin(2000, 0)}) {
      SCOPED_TRACE(std::string(JoinTimeName(params.time)) + " seed " + std::to_string(seed) +
                   " window " + std::to_string(params.window.count()) + " before " +
                   std::to_string(params.before.count()) + " after " +
                   std::to_string(params.after.count()));
      std::vector<WatermarkMs> watermarks;
      ASSERT_OK_AND_ASSIGN(auto batches,
                           RunTimedJoin(params, left, right, 7, kDisorder, &watermarks));
      const auto expected = TimedReference(params, left, right);
      if (params.before.count() + params.after.count() > 0) {
        ASSERT_FALSE(expected.empty());
      }
      EXPECT_EQ(TimedRows(batches), expected);
      // Watermarks pass through, in order.
      EXPECT_FALSE(watermarks.empty());
      EXPECT_TRUE(std::is_sorted(watermarks.begin(), watermarks.end()));
    }
  }
}

// The rows a time join holds are charged to the task's state budget: past it they move to disk
// by key hash (both inputs), each batch joins the other input's rows of its partitions read
// back, and watermarks evict on disk; the join stays exact however far behind the watermark is.
TEST(TimeJoinTest, HeldRowsPastTheStateBudgetSpillAndStayExact) {
  const auto left = TimedRows(5, 300, 8, 10, 200);
  const auto right = TimedRows(6, 120, 8, 25, 200);
  for (const JoinParams& params : {WindowJoin(100), IntervalJoin(300, 120)}) {
    SCOPED_TRACE(JoinTimeName(params.time));
    const auto expected = TimedReference(params, left, right);
    int64_t spilled = -1;
    ASSERT_OK_AND_ASSIGN(auto batches,
                         RunTimedJoin(params, left, right, 7, 200, nullptr, 1 << 20, &spilled));
    EXPECT_EQ(TimedRows(batches), expected);
    EXPECT_EQ(spilled, 0);
    // 1 KiB, and a watermark far behind (10 s of disorder): nearly everything is on disk.
    for (int64_t disorder : {int64_t{200}, int64_t{10'000}}) {
      ASSERT_OK_AND_ASSIGN(batches, RunTimedJoin(params, left, right, 13, disorder, nullptr,
                                                 1024, &spilled));
      EXPECT_EQ(TimedRows(batches), expected);
      EXPECT_GT(spilled, 0);
    }
  }
}

// A time join restored from a snapshot taken mid-stream (held rows in memory or on disk, the
// watermark, the late-row count) and fed the rest gives exactly the uninterrupted join's rows.
TEST(TimeJoinTest, RestoredFromASnapshotItContinuesExactly) {
  const auto left = TimedRows(7, 300, 8, 10, 200);
  const auto right = TimedRows(8, 120, 8, 25, 200);
  for (const JoinParams& params : {WindowJoin(100), IntervalJoin(300, 120)}) {
    for (int64_t budget : {int64_t{0}, int64_t{1024}}) {
      SCOPED_TRACE(std::string(JoinTimeName(params.time)) + " budget " + std::to_string(budget));
      ASSERT_OK_AND_ASSIGN(auto whole, RunTimedJoin(params, left, right, 10, 200, nullptr, budget));
      for (int64_t at : {10, 150}) {
        ASSERT_OK_AND_ASSIGN(auto resumed, RunTimedJoin(params, left, right, 10, 200, nullptr,
                                                        budget, nullptr, at));
        EXPECT_EQ(TimedRows(resumed), TimedRows(whole)) << "restarted at row " << at;
        EXPECT_EQ(TimedRows(resumed), TimedReference(params, left, right));
      }
    }
  }
}

TEST(TimeJoinTest, LateRowsAreNotJoined) {
  const auto left = TimedRows(3, 100, 4, 10, 1);
  auto right = TimedRows(4, 100, 4, 10, 1);
  // Right rows 50..59 arrive with times 400 ms earlier than their neighbours: behind the
  // watermark (no disorder allowed), so they are late and meet nothing.
  for (int i = 50; i < 60; ++i) right[i].t -= 400;
  for (const JoinParams& params : {WindowJoin(100), IntervalJoin(50, 50)}) {
    SCOPED_TRACE(JoinTimeName(params.time));
    ASSERT_OK_AND_ASSIGN(auto batches, RunTimedJoin(params, left, right, 10, 1));
    std::vector<TimedRow> on_time;
    for (size_t i = 0; i < right.size(); ++i) {
      if (i < 50 || i >= 60) on_time.push_back(right[i]);
    }
    EXPECT_EQ(TimedRows(batches), TimedReference(params, left, on_time));
    // Without the lateness, some of them would have matched.
    EXPECT_NE(TimedReference(params, left, on_time), TimedReference(params, left, right));
  }
}

// A source without event time sends no watermark: the time join could never evict the rows it
// holds, so it refuses at bind, naming the source (as an event-time window does).
TEST(TimeJoinTest, BindingRefusesASourceWithoutEventTime) {
  OperatorPlanContext context;
  context.bounded_input = false;
  context.sources_event_time = {{"left_source", "t"}, {"right_source", ""}};
  for (const JoinParams& p : {WindowJoin(1000), IntervalJoin(5, 5)}) {
    ASSERT_RAISES_WITH(Invalid, "source 'right_source', feeding it, declares none",
                       BindOperator(JoinSpec(p), {TimedSide("lp"), TimedSide("rp")},
                                    BindOptions{}, context)
                           .status());
  }
  auto status = BindOperator(JoinSpec(IntervalJoin(5, 5)), {TimedSide("lp"), TimedSide("rp")},
                             BindOptions{}, context)
                    .status();
  EXPECT_NE(status.message().find("operator 'joiner'"), std::string::npos) << status;
  EXPECT_NE(status.message().find("interval join"), std::string::npos) << status;
  context.sources_event_time[1].column = "t";
  EXPECT_OK(BindOperator(JoinSpec(WindowJoin(1000)), {TimedSide("lp"), TimedSide("rp")},
                         BindOptions{}, context)
                .status());
  // A hash join of bounded inputs needs no event time.
  context.bounded_input = true;
  context.sources_event_time[1].column = "";
  EXPECT_OK(BindOperator(JoinSpec(JoinParams{{"k"}, {"k"}}), {TimedSide("lp"), TimedSide("rp")},
                         BindOptions{}, context)
                .status());
}

TEST(TimeJoinTest, BindingChecksTimeColumns) {
  JoinParams p = WindowJoin(1000);
  p.right_time = "nope";
  ASSERT_RAISES_WITH(KeyError, "no event-time column 'nope' in the right input",
                     BindOperator(JoinSpec(p), {TimedSide("lp"), TimedSide("rp")}, BindOptions{})
                         .status());
  p.right_time = "rp";  // int64 milliseconds: accepted
  EXPECT_OK(BindOperator(JoinSpec(p), {TimedSide("lp"), TimedSide("rp")}, BindOptions{}).status());
  auto text_time = arrow::schema({arrow::field("k", arrow::int64()), arrow::field("t", arrow::utf8())});
  p.right_time = "t";
  ASSERT_RAISES_WITH(TypeError, "expected a timestamp or int64 milliseconds",
                     BindOperator(JoinSpec(p), {TimedSide("lp"), text_time}, BindOptions{})
                         .status());
  // Output columns: as the hash join's (hidden time and window columns dropped).
  ASSERT_OK_AND_ASSIGN(auto schema, JoinOutputSchema(WindowJoin(10), TimedSide("lp"),
                                                     TimedSide("rp")));
  EXPECT_EQ(schema->num_fields(), 6);
  EXPECT_EQ(schema->field(4)->name(), "t_right");
}

}  // namespace
}  // namespace sabot
