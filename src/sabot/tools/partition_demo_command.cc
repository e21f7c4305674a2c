#include "sabot/tools/partition_demo_command.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <arrow/api.h>

#include "sabot/common/data_generator.h"
#include "sabot/common/ids.h"
#include "sabot/partition/partitioner.h"

namespace sabot {

namespace {

struct DemoOptions {
  int64_t rows = 4 * 1000 * 1000;
  int64_t partitions = 64;
  std::string edge = "hash";
  std::string key = "int64";
  int64_t batch_rows = 64 * 1024;
  int64_t key_cardinality = 1 << 20;
  double hot_key_fraction = 0.0;
  int64_t writer_task = 0;
};

// Thrown out of the callback: CLI11 turns it into the exit status.
[[noreturn]] void Fail(const arrow::Status& status, int exit_code) {
  std::cerr << "sabot partition-demo: " << status.message() << "\n";
  throw CLI::RuntimeError(exit_code);
}

std::string Upper(std::string text) {
  for (char& c : text) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return text;
}

arrow::Status ValidateOptions(const DemoOptions& options) {
  constexpr int64_t kMaxRows = int64_t{1} << 34;
  if (options.rows < 0 || options.rows > kMaxRows) {
    return arrow::Status::Invalid("--rows must be between 0 and ", kMaxRows, ", got ",
                                  options.rows);
  }
  ARROW_RETURN_NOT_OK(ValidateCount(options.partitions, "--partitions"));
  if (options.batch_rows < 1 || options.batch_rows > (int64_t{1} << 24)) {
    return arrow::Status::Invalid("--batch-rows must be between 1 and ", int64_t{1} << 24, ", got ",
                                  options.batch_rows);
  }
  if (options.key_cardinality < 1) {
    return arrow::Status::Invalid("--keys must be at least 1, got ", options.key_cardinality);
  }
  if (!(options.hot_key_fraction >= 0.0 && options.hot_key_fraction <= 1.0)) {
    return arrow::Status::Invalid("--hot-key-fraction must be between 0 and 1, got ",
                                  options.hot_key_fraction);
  }
  if (options.writer_task < 0 || options.writer_task >= kMaxPartitions) {
    return arrow::Status::Invalid("--task must be between 0 and ", kMaxPartitions - 1, ", got ",
                                  options.writer_task);
  }
  if (options.key != "int64" && options.key != "string" && options.key != "two-column") {
    return arrow::Status::Invalid("--key must be int64, string or two-column, got '", options.key,
                                  "'");
  }
  if (!ParseEdgeType(Upper(options.edge)).ok()) {
    return arrow::Status::Invalid(
        "--edge must be hash, range, rebalance, broadcast or forward, got '", options.edge, "'");
  }
  return arrow::Status::OK();
}

std::vector<std::string> KeyColumns(const std::string& key) {
  if (key == "string") return {"key_string"};
  if (key == "two-column") return {"key", "key_string"};
  return {"key"};
}

// RANGE boundaries: the (n - 1) quantiles of the key columns in a sample batch of the
// generated table (whose columns `key` and `key_string` are never null).
arrow::Result<std::shared_ptr<arrow::RecordBatch>> SampleBoundaries(
    const arrow::RecordBatch& sample, const std::vector<std::string>& keys, int64_t partitions) {
  const auto ints = std::static_pointer_cast<arrow::Int64Array>(sample.GetColumnByName("key"));
  const auto strings =
      std::static_pointer_cast<arrow::StringArray>(sample.GetColumnByName("key_string"));
  const bool by_int = keys[0] == "key";
  const bool by_string = keys.back() == "key_string";
  std::vector<std::pair<int64_t, std::string>> rows;
  for (int64_t i = 0; i < sample.num_rows(); ++i) {
    rows.emplace_back(by_int ? ints->Value(i) : 0,
                      by_string ? std::string(strings->GetView(i)) : std::string());
  }
  std::sort(rows.begin(), rows.end());
  arrow::Int64Builder int_bounds;
  arrow::StringBuilder string_bounds;
  for (int64_t p = 1; p < partitions; ++p) {
    const auto& row = rows[static_cast<size_t>(p * sample.num_rows() / partitions)];
    ARROW_RETURN_NOT_OK(int_bounds.Append(row.first));
    ARROW_RETURN_NOT_OK(string_bounds.Append(row.second));
  }
  arrow::FieldVector fields;
  arrow::ArrayVector columns;
  if (by_int) {
    fields.push_back(arrow::field("key", arrow::int64(), /*nullable=*/false));
    ARROW_ASSIGN_OR_RAISE(auto column, int_bounds.Finish());
    columns.push_back(std::move(column));
  }
  if (by_string) {
    fields.push_back(arrow::field("key_string", arrow::utf8(), /*nullable=*/false));
    ARROW_ASSIGN_OR_RAISE(auto column, string_bounds.Finish());
    columns.push_back(std::move(column));
  }
  return arrow::RecordBatch::Make(arrow::schema(fields), partitions - 1, columns);
}

arrow::Status RunDemo(const DemoOptions& options) {
  ARROW_ASSIGN_OR_RAISE(EdgeType edge, ParseEdgeType(Upper(options.edge)));
  DataGeneratorOptions generator;
  generator.batch_rows = options.batch_rows;
  generator.key_cardinality = options.key_cardinality;
  generator.string_key = options.key != "int64";
  if (options.hot_key_fraction > 0) {
    generator.distribution = KeyDistribution::kSkewed;
    generator.hot_key_fraction = options.hot_key_fraction;
  }
  const std::vector<std::string> keys = KeyColumns(options.key);
  std::shared_ptr<const PartitionSpec> spec;
  if (edge == EdgeType::kHash) {
    ARROW_ASSIGN_OR_RAISE(spec, PartitionSpec::Hash(keys, options.partitions));
  } else if (edge == EdgeType::kRange) {
    if (options.partitions - 1 > options.batch_rows) {
      return arrow::Status::Invalid("RANGE into ", options.partitions,
                                    " partitions needs --batch-rows >= ", options.partitions - 1,
                                    " to sample boundaries");
    }
    ARROW_ASSIGN_OR_RAISE(auto sample, GenerateBatch(generator, 0));
    ARROW_ASSIGN_OR_RAISE(auto boundaries, SampleBoundaries(*sample, keys, options.partitions));
    ARROW_ASSIGN_OR_RAISE(spec, PartitionSpec::Range(boundaries));
  } else {
    ARROW_ASSIGN_OR_RAISE(spec, PartitionSpec::Make(edge, {}, options.partitions));
  }
  const auto schema = GeneratedSchema(generator);
  ARROW_ASSIGN_OR_RAISE(auto partitioner,
                        MakePartitioner(spec, schema, static_cast<TaskIndex>(options.writer_task)));

  std::printf("partition-demo: %s, %lld rows in batches of %lld, key %s, writer task %lld\n",
              spec->ToString().c_str(), static_cast<long long>(options.rows),
              static_cast<long long>(options.batch_rows), options.key.c_str(),
              static_cast<long long>(options.writer_task));
  std::vector<int64_t> counts(static_cast<size_t>(spec->num_partitions()), 0);
  int64_t input_bytes = 0;
  int64_t batches = 0;
  double seconds = 0;
  for (int64_t start = 0; start < options.rows; start += options.batch_rows, ++batches) {
    ARROW_ASSIGN_OR_RAISE(auto batch, GenerateBatch(generator, batches));
    int64_t batch_bytes = 0;
    for (const auto& column : batch->columns()) {
      for (const auto& buffer : column->data()->buffers) {
        if (buffer) batch_bytes += buffer->size();
      }
    }
    if (options.rows - start < batch->num_rows()) {
      // The last batch is a slice: count its share of the bytes.
      batch_bytes = batch_bytes * (options.rows - start) / batch->num_rows();
      batch = batch->Slice(0, options.rows - start);
    }
    input_bytes += batch_bytes;
    const auto begin = std::chrono::steady_clock::now();
    ARROW_ASSIGN_OR_RAISE(auto parts, partitioner->Partition(batch));
    seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count();
    for (int32_t p = 0; p < parts.num_partitions(); ++p) counts[p] += parts.num_rows(p);
  }

  std::printf("\nrows per partition:\n");
  int64_t total = 0;
  int64_t smallest = counts.empty() ? 0 : counts[0];
  int64_t largest = 0;
  for (size_t p = 0; p < counts.size(); ++p) {
    std::printf("  %5zu: %10lld%s", p, static_cast<long long>(counts[p]),
                (p % 4 == 3 || p + 1 == counts.size()) ? "\n" : "");
    total += counts[p];
    smallest = std::min(smallest, counts[p]);
    largest = std::max(largest, counts[p]);
  }
  const int64_t expected =
      edge == EdgeType::kBroadcast ? options.rows * spec->num_partitions() : options.rows;
  std::printf("\ntotal %lld rows out (%s %lld); smallest partition %lld, largest %lld\n",
              static_cast<long long>(total), total == expected ? "as expected:" : "EXPECTED",
              static_cast<long long>(expected), static_cast<long long>(smallest),
              static_cast<long long>(largest));
  if (seconds > 0) {
    std::printf(
        "partitioned %lld rows (%.1f MB) in %.3f s: %.1f M rows/s, %.2f GB/s "
        "(partitioning only, one thread; generation not counted)\n",
        static_cast<long long>(options.rows), static_cast<double>(input_bytes) / 1e6, seconds,
        static_cast<double>(options.rows) / seconds / 1e6,
        static_cast<double>(input_bytes) / seconds / 1e9);
  }
  if (total != expected) {
    return arrow::Status::Invalid("rows out (", total, ") differ from the rows expected (",
                                  expected, ")");
  }
  return arrow::Status::OK();
}

}  // namespace

void AddPartitionDemoCommand(CLI::App& app) {
  auto options = std::make_shared<DemoOptions>();
  CLI::App* command = app.add_subcommand(
      "partition-demo", "Partition a generated table; print per-partition counts and throughput");
  command->add_option("--rows", options->rows, "Rows to generate and partition")
      ->capture_default_str();
  command->add_option("--partitions", options->partitions, "Number of partitions")
      ->capture_default_str();
  command
      ->add_option("--edge", options->edge,
                   "Edge type: hash, range, rebalance, broadcast or forward")
      ->capture_default_str();
  command->add_option("--key", options->key, "Key: int64, string or two-column (int64, string)")
      ->capture_default_str();
  command->add_option("--batch-rows", options->batch_rows, "Rows per batch")->capture_default_str();
  command->add_option("--keys", options->key_cardinality, "Number of distinct keys")
      ->capture_default_str();
  command
      ->add_option("--hot-key-fraction", options->hot_key_fraction,
                   "Fraction of rows with key 0 (skew); 0 for uniform keys")
      ->capture_default_str();
  command->add_option("--task", options->writer_task, "Writer task index (FORWARD, REBALANCE)")
      ->capture_default_str();
  command->callback([options] {
    arrow::Status valid = ValidateOptions(*options);
    if (!valid.ok()) Fail(valid, 2);
    arrow::Status status = RunDemo(*options);
    if (!status.ok()) Fail(status, 1);
  });
}

}  // namespace sabot
