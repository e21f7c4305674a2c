// Writes a table of every HASH key type, with the hashes and partitions Sabot computes for it, to
// an Arrow IPC file, so tests/reference/hash_reference.py (an independent implementation of
// docs/hashing.md, in another process) can recompute and compare them.
//
// Usage: hash_reference_export OUTPUT.arrow
//
// The file holds one batch: the key columns (sliced, so their offset is not 0, and with nulls),
// then for each case "hash|<k1,k2,...>" (uint64, KeyHasher's row hashes) and
// "pid<N>|<k1,k2,...>" (int32, the partition each row landed in when HashPartitioner split the
// batch into N partitions). The schema metadata "cases" lists the cases, one per line.

#include <cmath>
#include <functional>
#include <iostream>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include <arrow/api.h>
#include <arrow/io/file.h>
#include <arrow/ipc/writer.h>
#include <arrow/json/from_string.h>
#include <arrow/util/key_value_metadata.h>

#include "sabot/common/arrow_init.h"
#include "sabot/partition/hash_partitioner.h"
#include "sabot/partition/key_hash.h"

namespace sabot {
namespace {

constexpr int64_t kRows = 240;
constexpr int64_t kSliceOffset = 5;

std::string JsonList(int64_t n, const std::function<std::string(int64_t)>& value) {
  std::ostringstream out;
  out << "[";
  for (int64_t i = 0; i < n; ++i) {
    out << (i ? "," : "") << (i % 7 == 3 ? std::string("null") : value(i));
  }
  out << "]";
  return out.str();
}

std::string Quoted(const std::string& s) { return "\"" + s + "\""; }

arrow::Result<std::shared_ptr<arrow::Array>> FromJson(
    std::shared_ptr<arrow::DataType> type, const std::function<std::string(int64_t)>& f) {
  return arrow::json::ArrayFromJSONString(type, JsonList(kRows + kSliceOffset, f));
}

arrow::Result<std::shared_ptr<arrow::Array>> Doubles(bool as_float) {
  const double specials[] = {0.0,
                             -0.0,
                             std::numeric_limits<double>::quiet_NaN(),
                             -std::numeric_limits<double>::quiet_NaN(),
                             std::numeric_limits<double>::infinity(),
                             -std::numeric_limits<double>::infinity(),
                             1.5,
                             -2.25,
                             1e300,
                             5e-324};
  std::unique_ptr<arrow::ArrayBuilder> builder;
  ARROW_RETURN_NOT_OK(arrow::MakeBuilder(arrow::default_memory_pool(),
                                         as_float ? arrow::float32() : arrow::float64(), &builder));
  for (int64_t i = 0; i < kRows + kSliceOffset; ++i) {
    if (i % 7 == 3) {
      ARROW_RETURN_NOT_OK(builder->AppendNull());
      continue;
    }
    double v = i % 3 == 0 ? specials[(i / 3) % 10] : static_cast<double>(i % 13) * 0.5 - 3;
    if (as_float) {
      float f = static_cast<float>(v);
      if (i % 3 == 0 && (i / 3) % 10 == 3) f = -std::numeric_limits<float>::quiet_NaN();
      ARROW_RETURN_NOT_OK(static_cast<arrow::FloatBuilder&>(*builder).Append(f));
    } else {
      ARROW_RETURN_NOT_OK(static_cast<arrow::DoubleBuilder&>(*builder).Append(v));
    }
  }
  return builder->Finish();
}

arrow::Status Run(const std::string& path) {
  using arrow::field;
  std::vector<std::pair<std::string, std::shared_ptr<arrow::Array>>> columns;
  auto add = [&](const std::string& name, arrow::Result<std::shared_ptr<arrow::Array>> array) {
    if (!array.ok()) return array.status();
    columns.emplace_back(name, array.MoveValueUnsafe()->Slice(kSliceOffset, kRows));
    return arrow::Status::OK();
  };
  auto small = [](int64_t i) { return std::to_string(static_cast<int>(i % 11) - 5); };
  auto big = [](int64_t i) {
    return std::to_string((i % 9) * 1000000007LL * (i % 2 ? -1 : 1) * 1000000LL);
  };
  auto text = [](int64_t i) {
    static const char* words[] = {"",
                                  "a",
                                  "sabot",
                                  "shuffle",
                                  "héllo",
                                  "x\\u0000y",
                                  "a longer string that is more than thirty-two bytes long"};
    return Quoted(words[i % 7] + std::string(i % 4 == 0 ? "" : std::to_string(i % 5)));
  };
  ARROW_RETURN_NOT_OK(add("i8", FromJson(arrow::int8(), small)));
  ARROW_RETURN_NOT_OK(add("i16", FromJson(arrow::int16(), [](int64_t i) {
                            return std::to_string((i % 17) * 1000 - 8000);
                          })));
  ARROW_RETURN_NOT_OK(add("i32", FromJson(arrow::int32(), small)));
  ARROW_RETURN_NOT_OK(add("i64", FromJson(arrow::int64(), big)));
  ARROW_RETURN_NOT_OK(
      add("u8", FromJson(arrow::uint8(), [](int64_t i) { return std::to_string(i % 256); })));
  ARROW_RETURN_NOT_OK(add(
      "u16", FromJson(arrow::uint16(), [](int64_t i) { return std::to_string(i * 997 % 65536); })));
  ARROW_RETURN_NOT_OK(add("u32", FromJson(arrow::uint32(), [](int64_t i) {
                            return std::to_string(4294967295ULL - (i % 6));
                          })));
  ARROW_RETURN_NOT_OK(add("u64", FromJson(arrow::uint64(), [](int64_t i) {
                            return std::to_string(18446744073709551615ULL - (i % 5) * 3);
                          })));
  ARROW_RETURN_NOT_OK(add("f32", Doubles(true)));
  ARROW_RETURN_NOT_OK(add("f64", Doubles(false)));
  ARROW_RETURN_NOT_OK(add("bool", FromJson(arrow::boolean(), [](int64_t i) {
                            return i % 3 == 0 ? std::string("true") : std::string("false");
                          })));
  ARROW_RETURN_NOT_OK(add("str", FromJson(arrow::utf8(), text)));
  ARROW_RETURN_NOT_OK(add("lstr", FromJson(arrow::large_utf8(), text)));
  ARROW_RETURN_NOT_OK(add("bin", FromJson(arrow::binary(), text)));
  ARROW_RETURN_NOT_OK(add("lbin", FromJson(arrow::large_binary(), text)));
  ARROW_RETURN_NOT_OK(add("fsb", FromJson(arrow::fixed_size_binary(3), [](int64_t i) {
                            return Quoted(std::string(1, static_cast<char>('a' + i % 5)) + "b" +
                                          std::to_string(i % 10));
                          })));
  ARROW_RETURN_NOT_OK(add("d32", FromJson(arrow::date32(), [](int64_t i) {
                            return std::to_string(i % 20 * 365 - 3000);
                          })));
  ARROW_RETURN_NOT_OK(add("d64", FromJson(arrow::date64(), [](int64_t i) {
                            return std::to_string((i % 20) * 86400000LL);
                          })));
  ARROW_RETURN_NOT_OK(add("t32", FromJson(arrow::time32(arrow::TimeUnit::MILLI), [](int64_t i) {
                            return std::to_string(i % 24 * 3600000);
                          })));
  ARROW_RETURN_NOT_OK(add("t64", FromJson(arrow::time64(arrow::TimeUnit::MICRO), [](int64_t i) {
                            return std::to_string(i % 24 * 3600000000LL + 17);
                          })));
  ARROW_RETURN_NOT_OK(
      add("ts", FromJson(arrow::timestamp(arrow::TimeUnit::NANO, "UTC"), [](int64_t i) {
            return std::to_string((i % 30) * 1000000000123LL - 5000000000000LL);
          })));
  ARROW_RETURN_NOT_OK(add("dec", FromJson(arrow::decimal128(24, 4), [](int64_t i) {
                            const int64_t units = (i % 13) * 123456789 - 700000000;
                            const std::string sign = units < 0 ? "-" : "";
                            const int64_t a = units < 0 ? -units : units;
                            std::string frac = std::to_string(a % 10000);
                            frac = std::string(4 - frac.size(), '0') + frac;
                            return Quoted(sign + std::to_string(a / 10000) + "." + frac);
                          })));
  {
    // Dictionary with repeated values and a null value: hashing must follow the values.
    const std::string dictionary = R"(["red", "green", "red", null, "blue", ""])";
    auto indices =
        JsonList(kRows + kSliceOffset, [](int64_t i) { return std::to_string((i * 5) % 6); });
    ARROW_RETURN_NOT_OK(
        add("dict", arrow::json::DictArrayFromJSONString(
                        arrow::dictionary(arrow::int16(), arrow::utf8()), indices, dictionary)));
  }

  std::vector<std::vector<std::string>> cases;
  for (const auto& [name, array] : columns) cases.push_back({name});
  cases.push_back({"i64", "str"});
  cases.push_back({"str", "i64"});
  cases.push_back({"i32", "f64", "dict", "ts", "dec", "bool"});
  cases.push_back({"dict", "lbin", "fsb", "u64", "f32", "d32", "t64"});

  arrow::FieldVector fields;
  arrow::ArrayVector arrays;
  for (const auto& [name, array] : columns) {
    fields.push_back(field(name, array->type()));
    arrays.push_back(array);
  }
  // A row number column, to find where each row went.
  arrow::Int64Builder row_builder;
  for (int64_t i = 0; i < kRows; ++i) ARROW_RETURN_NOT_OK(row_builder.Append(i));
  ARROW_ASSIGN_OR_RAISE(auto rows, row_builder.Finish());
  fields.push_back(field("row", arrow::int64()));
  arrays.push_back(rows);
  auto input_schema = arrow::schema(fields);
  auto input = arrow::RecordBatch::Make(input_schema, kRows, arrays);

  std::string case_list;
  for (const auto& keys : cases) {
    std::string label;
    for (const auto& k : keys) label += (label.empty() ? "" : ",") + k;
    case_list += label + "\n";
    ARROW_ASSIGN_OR_RAISE(auto hasher, KeyHasher::Make(keys, *input_schema));
    std::vector<uint64_t> hashes(kRows);
    ARROW_RETURN_NOT_OK(hasher->Hash(*input, hashes.data()));
    arrow::UInt64Builder hash_builder;
    ARROW_RETURN_NOT_OK(hash_builder.AppendValues(hashes));
    ARROW_ASSIGN_OR_RAISE(auto hash_array, hash_builder.Finish());
    fields.push_back(field("hash|" + label, arrow::uint64()));
    arrays.push_back(hash_array);
    for (int32_t n : {7, 64}) {
      ARROW_ASSIGN_OR_RAISE(auto spec, PartitionSpec::Hash(keys, n));
      ARROW_ASSIGN_OR_RAISE(auto partitioner, MakePartitioner(spec, input_schema, 0));
      ARROW_ASSIGN_OR_RAISE(auto parts, partitioner->Partition(input));
      std::vector<int32_t> pid(kRows, -1);
      for (int32_t p = 0; p < n; ++p) {
        if (!parts.batches[p]) continue;
        auto row_column =
            std::static_pointer_cast<arrow::Int64Array>(parts.batches[p]->GetColumnByName("row"));
        for (int64_t j = 0; j < row_column->length(); ++j) pid[row_column->Value(j)] = p;
      }
      arrow::Int32Builder pid_builder;
      ARROW_RETURN_NOT_OK(pid_builder.AppendValues(pid));
      ARROW_ASSIGN_OR_RAISE(auto pid_array, pid_builder.Finish());
      fields.push_back(field("pid" + std::to_string(n) + "|" + label, arrow::int32()));
      arrays.push_back(pid_array);
    }
  }
  auto metadata = arrow::key_value_metadata({"cases", "key_hash_version"},
                                            {case_list, std::to_string(kKeyHashVersion)});
  auto schema = arrow::schema(fields, metadata);
  auto output = arrow::RecordBatch::Make(schema, kRows, arrays);
  ARROW_RETURN_NOT_OK(output->ValidateFull());
  ARROW_ASSIGN_OR_RAISE(auto file, arrow::io::FileOutputStream::Open(path));
  ARROW_ASSIGN_OR_RAISE(auto writer, arrow::ipc::MakeFileWriter(file, schema));
  ARROW_RETURN_NOT_OK(writer->WriteRecordBatch(*output));
  ARROW_RETURN_NOT_OK(writer->Close());
  return file->Close();
}

}  // namespace
}  // namespace sabot

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: hash_reference_export OUTPUT.arrow\n";
    return 2;
  }
  arrow::Status status = sabot::InitializeArrow();
  if (status.ok()) status = sabot::Run(argv[1]);
  if (!status.ok()) {
    std::cerr << "hash_reference_export: " << status.ToString() << "\n";
    return 1;
  }
  return 0;
}
