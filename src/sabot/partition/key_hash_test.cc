#include "sabot/partition/key_hash.h"

#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include <arrow/api.h>
#include <arrow/json/from_string.h>

#include "sabot/partition/partition_testing_internal.h"

namespace sabot {
namespace {

using testing::Json;

// Row hashes of `arrays` as key columns, in order.
std::vector<uint64_t> HashOf(const std::vector<std::shared_ptr<arrow::Array>>& arrays) {
  arrow::FieldVector fields;
  for (size_t i = 0; i < arrays.size(); ++i) {
    fields.push_back(arrow::field("k" + std::to_string(i), arrays[i]->type()));
  }
  auto schema = arrow::schema(fields);
  auto batch = arrow::RecordBatch::Make(schema, arrays[0]->length(), arrays);
  std::vector<std::string> names;
  for (const auto& f : fields) names.push_back(f->name());
  auto hasher = KeyHasher::Make(names, *schema).ValueOrDie();
  std::vector<uint64_t> hashes(static_cast<size_t>(batch->num_rows()));
  arrow::Status st = hasher->Hash(*batch, hashes.data());
  EXPECT_TRUE(st.ok()) << st.ToString();
  return hashes;
}

uint64_t HashOne(const std::shared_ptr<arrow::DataType>& type, const std::string& json) {
  return HashOf({Json(type, json)})[0];
}

TEST(XxHash64, PublishedVectors) {
  auto xx = [](const std::string& s) {
    return XxHash64(reinterpret_cast<const uint8_t*>(s.data()), s.size(), 0);
  };
  EXPECT_EQ(xx(""), 0xEF46DB3751D8E999ULL);
  EXPECT_EQ(xx("a"), 0xD24EC4F1A98C6E5BULL);
  EXPECT_EQ(xx("abc"), 0x44BC2CF5AD770999ULL);
  EXPECT_EQ(xx("message digest"), 0x066ED728FCEEB3BEULL);
  EXPECT_EQ(xx("abcdefghijklmnopqrstuvwxyz"), 0xCFE1F278FA89835CULL);
  EXPECT_EQ(xx("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"),
            0xAAA46907D3047814ULL);
  std::string digits;
  for (int i = 0; i < 8; ++i) digits += "1234567890";
  EXPECT_EQ(xx(digits), 0xE04A477F19EE145DULL);
}

// Golden values: computed by tests/reference/hash_reference.py from docs/hashing.md, and listed
// there. If one of these changes, rows go elsewhere than in every other process: don't.
TEST(KeyHashGolden, SingleColumns) {
  EXPECT_EQ(HashOne(arrow::int64(), "[0]"), 0x6053b2239a92b577ULL);
  EXPECT_EQ(HashOne(arrow::int64(), "[1]"), 0x4498007edcaa108cULL);
  EXPECT_EQ(HashOne(arrow::int64(), "[-1]"), 0xee63d88052fe2499ULL);
  EXPECT_EQ(HashOne(arrow::int64(), "[42]"), 0xc4ab279af5c8c086ULL);
  EXPECT_EQ(HashOne(arrow::int64(), "[null]"), 0x428a697de450e48bULL);
  EXPECT_EQ(HashOne(arrow::utf8(), "[null]"), 0x428a697de450e48bULL);
  EXPECT_EQ(HashOne(arrow::float64(), "[1.5]"), 0x51ec6bae4562daa9ULL);
  EXPECT_EQ(HashOne(arrow::utf8(), R"([""])"), 0xdd3bad8464db1cf1ULL);
  EXPECT_EQ(HashOne(arrow::utf8(), R"(["sabot"])"), 0xba102286a4535ca8ULL);
  EXPECT_EQ(HashOne(arrow::decimal128(5, 2), R"(["1.23"])"), 0x42607caaaae88717ULL);
  EXPECT_EQ(HashOne(arrow::fixed_size_binary(3), R"(["abc"])"), 0x5c87fbba7d1addb9ULL);
  const double nan = std::numeric_limits<double>::quiet_NaN();
  arrow::DoubleBuilder builder;
  ASSERT_OK(builder.Append(nan));
  ASSERT_OK_AND_ASSIGN(auto nan_array, builder.Finish());
  EXPECT_EQ(HashOf({nan_array})[0], 0xb9ad5474d4f5cd3eULL);
}

TEST(KeyHashGolden, PartitionsAndTwoColumns) {
  EXPECT_EQ(HashToPartition(0x6053b2239a92b577ULL, 8), 3);
  EXPECT_EQ(HashToPartition(0x6053b2239a92b577ULL, 64), 24);
  EXPECT_EQ(HashToPartition(0x6053b2239a92b577ULL, 512), 192);
  EXPECT_EQ(HashToPartition(0x428a697de450e48bULL, 64), 16);
  EXPECT_EQ(HashToPartition(0xee63d88052fe2499ULL, 512), 476);
  EXPECT_EQ(HashToPartition(0, 64), 0);
  EXPECT_EQ(HashToPartition(~uint64_t{0}, 64), 63);
  EXPECT_EQ(HashToPartition(~uint64_t{0}, kMaxPartitions), kMaxPartitions - 1);
  auto one = Json(arrow::int64(), "[1]");
  auto sabot = Json(arrow::utf8(), R"(["sabot"])");
  EXPECT_EQ(HashOf({one, sabot})[0], 0x106fd07c80b9563bULL);
  EXPECT_EQ(HashOf({sabot, one})[0], 0xbe72bee8032d5e48ULL);
}

TEST(KeyHash, KeyOrderMatters) {
  auto a = Json(arrow::int64(), "[1, 2, 3]");
  auto b = Json(arrow::int64(), "[2, 1, 3]");
  auto ab = HashOf({a, b});
  auto ba = HashOf({b, a});
  EXPECT_NE(ab[0], ba[0]);
  EXPECT_EQ(ab[0], ba[1]);  // (1, 2) is the same key in both
  EXPECT_NE(ab[2], HashOf({a})[2]);
}

TEST(KeyHash, FloatCanonicalForms) {
  arrow::DoubleBuilder d;
  ASSERT_OK(d.AppendValues({0.0, -0.0, std::numeric_limits<double>::quiet_NaN(),
                            -std::numeric_limits<double>::quiet_NaN(),
                            std::numeric_limits<double>::signaling_NaN(), 1.5}));
  ASSERT_OK_AND_ASSIGN(auto doubles, d.Finish());
  auto h = HashOf({doubles});
  EXPECT_EQ(h[0], h[1]);
  EXPECT_EQ(h[2], h[3]);
  EXPECT_EQ(h[2], h[4]);
  EXPECT_NE(h[0], h[2]);
  arrow::FloatBuilder f;
  ASSERT_OK(f.AppendValues({-0.0f, std::nanf("7"), 1.5f}));
  ASSERT_OK_AND_ASSIGN(auto floats, f.Finish());
  auto hf = HashOf({floats});
  EXPECT_EQ(hf[0], h[0]);
  EXPECT_EQ(hf[1], h[2]);
  EXPECT_EQ(hf[2], h[5]);  // float32 1.5 widens exactly to float64 1.5
  EXPECT_EQ(CanonicalDoubleBits(-0.0), 0u);
  EXPECT_EQ(CanonicalDoubleBits(-std::numeric_limits<double>::quiet_NaN()), 0x7FF8000000000000ULL);
}

TEST(KeyHash, IntegerWidthsAgreeOnCanonicalForm) {
  const std::string values = "[-3, 0, 7, 100]";
  auto expected = HashOf({Json(arrow::int64(), values)});
  for (const auto& type : {arrow::int8(), arrow::int16(), arrow::int32()}) {
    EXPECT_EQ(HashOf({Json(type, values)}), expected) << type->ToString();
  }
  auto unsigned_expected = HashOf({Json(arrow::int64(), "[0, 7, 100]")});
  for (const auto& type : {arrow::uint8(), arrow::uint16(), arrow::uint32(), arrow::uint64()}) {
    EXPECT_EQ(HashOf({Json(type, "[0, 7, 100]")}), unsigned_expected) << type->ToString();
  }
  EXPECT_EQ(HashOne(arrow::uint64(), "[18446744073709551615]"), HashOne(arrow::int64(), "[-1]"));
  EXPECT_EQ(HashOne(arrow::boolean(), "[true]"), HashOne(arrow::int64(), "[1]"));
  EXPECT_EQ(HashOne(arrow::boolean(), "[false]"), HashOne(arrow::int64(), "[0]"));
}

TEST(KeyHash, TemporalTypesHashTheirStoredInteger) {
  EXPECT_EQ(HashOne(arrow::date32(), "[18000]"), HashOne(arrow::int64(), "[18000]"));
  EXPECT_EQ(HashOne(arrow::date64(), "[86400000]"), HashOne(arrow::int64(), "[86400000]"));
  EXPECT_EQ(HashOne(arrow::time32(arrow::TimeUnit::SECOND), "[-5]"),
            HashOne(arrow::int64(), "[-5]"));
  EXPECT_EQ(HashOne(arrow::time64(arrow::TimeUnit::NANO), "[123456789]"),
            HashOne(arrow::int64(), "[123456789]"));
  EXPECT_EQ(HashOne(arrow::timestamp(arrow::TimeUnit::MICRO, "UTC"), "[-77]"),
            HashOne(arrow::int64(), "[-77]"));
}

TEST(KeyHash, ByteStringTypesAgree) {
  const std::string values =
      R"(["", "a", "héllo", "a longer value of more than thirty-two bytes"])";
  auto expected = HashOf({Json(arrow::utf8(), values)});
  for (const auto& type : {arrow::large_utf8(), arrow::binary(), arrow::large_binary()}) {
    EXPECT_EQ(HashOf({Json(type, values)}), expected) << type->ToString();
  }
  for (size_t i = 1; i < expected.size(); ++i) EXPECT_NE(expected[0], expected[i]);
  // Explicitly: a string hashes through XXH64 of its bytes.
  const std::string s = "héllo";
  EXPECT_EQ(expected[2],
            CombineKeyHash(kKeyHashRowSeed,
                           XxHash64(reinterpret_cast<const uint8_t*>(s.data()), s.size(), 0)));
}

TEST(KeyHash, Decimal128HashesUnscaledLittleEndianBytes) {
  auto h = HashOne(arrow::decimal128(10, 2), R"(["-1.00"])");
  uint8_t bytes[16];
  arrow::Decimal128 value(-100);
  value.ToBytes(bytes);
  EXPECT_EQ(h, CombineKeyHash(kKeyHashRowSeed, XxHash64(bytes, 16, 0)));
  EXPECT_NE(h, HashOne(arrow::decimal128(10, 2), R"(["1.00"])"));
}

TEST(KeyHash, DictionaryHashesValuesNotIndices) {
  auto plain = Json(arrow::utf8(), R"(["red", "blue", null, "red", "green", null])");
  // Two different encodings of the same values, one with duplicate and null dictionary entries.
  auto dict_a = arrow::json::DictArrayFromJSONString(
                    arrow::dictionary(arrow::int8(), arrow::utf8()), "[0, 1, null, 0, 2, null]",
                    R"(["red", "blue", "green"])")
                    .ValueOrDie();
  auto dict_b = arrow::json::DictArrayFromJSONString(
                    arrow::dictionary(arrow::uint32(), arrow::utf8()), "[3, 1, 2, 0, 4, null]",
                    R"(["red", "blue", null, "red", "green"])")
                    .ValueOrDie();
  auto expected = HashOf({plain});
  EXPECT_EQ(HashOf({dict_a}), expected);
  EXPECT_EQ(HashOf({dict_b}), expected);
  // Sliced dictionary array (offset 2).
  auto sliced = HashOf({dict_b->Slice(2, 3)});
  EXPECT_EQ(sliced, std::vector<uint64_t>(expected.begin() + 2, expected.begin() + 5));
}

TEST(KeyHash, DictionaryIndexOutOfRangeIsAnError) {
  auto indices = Json(arrow::int32(), "[0, 5]");
  auto dictionary = Json(arrow::utf8(), R"(["x"])");
  auto type = arrow::dictionary(arrow::int32(), arrow::utf8());
  auto array = std::make_shared<arrow::DictionaryArray>(type, indices, dictionary);
  auto schema = arrow::schema({arrow::field("k", type)});
  auto batch = arrow::RecordBatch::Make(schema, 2, {array});
  ASSERT_OK_AND_ASSIGN(auto hasher, KeyHasher::Make({"k"}, *schema));
  std::vector<uint64_t> hashes(2);
  ASSERT_RAISES_WITH(Invalid, "outside its dictionary", hasher->Hash(*batch, hashes.data()));
}

TEST(KeyHash, SlicedInputMatchesUnsliced) {
  auto ints = Json(arrow::int64(), "[1, 2, null, 4, 5, 6, 7, 8, 9, 10]");
  auto strs = Json(arrow::utf8(), R"(["a", "b", "c", null, "e", "f", "g", "h", "i", "j"])");
  auto bools = Json(arrow::boolean(),
                    "[true, false, null, true, true, false, true, false, "
                    "true, true]");
  auto fsb = Json(arrow::fixed_size_binary(2),
                  R"(["aa", "bb", "cc", "dd", null, "ff", "gg", "hh", "ii", "jj"])");
  auto full = HashOf({ints, strs, bools, fsb});
  auto sliced =
      HashOf({ints->Slice(3, 6), strs->Slice(3, 6), bools->Slice(3, 6), fsb->Slice(3, 6)});
  EXPECT_EQ(sliced, std::vector<uint64_t>(full.begin() + 3, full.begin() + 9));
}

TEST(KeyHash, NullsHashToTheNullConstantInEveryType) {
  for (const auto& type :
       {arrow::int8(), arrow::uint64(), arrow::float32(), arrow::boolean(), arrow::large_utf8(),
        arrow::binary(), arrow::date32(), arrow::timestamp(arrow::TimeUnit::SECOND),
        arrow::decimal128(5, 1), arrow::fixed_size_binary(4)}) {
    EXPECT_EQ(HashOne(type, "[null]"), CombineKeyHash(kKeyHashRowSeed, kKeyHashNull))
        << type->ToString();
  }
}

TEST(KeyHash, BindingErrorsNameTheColumn) {
  auto schema = arrow::schema(
      {arrow::field("a", arrow::int64()), arrow::field("l", arrow::list(arrow::int32())),
       arrow::field("d", arrow::int32()), arrow::field("d", arrow::utf8())});
  ASSERT_RAISES_WITH(Invalid, "key column 'missing' is not in the input schema",
                     KeyHasher::Make({"missing"}, *schema).status());
  ASSERT_RAISES_WITH(TypeError, "key column 'l' has type list<item: int32>",
                     KeyHasher::Make({"a", "l"}, *schema).status());
  ASSERT_RAISES_WITH(Invalid, "key column 'd' is ambiguous",
                     KeyHasher::Make({"d"}, *schema).status());
  ASSERT_RAISES_WITH(Invalid, "at least one key column", KeyHasher::Make({}, *schema).status());
  EXPECT_FALSE(IsHashableKeyType(*arrow::struct_({arrow::field("x", arrow::int8())})));
  EXPECT_FALSE(IsHashableKeyType(*arrow::float16()));
  EXPECT_FALSE(IsHashableKeyType(*arrow::dictionary(arrow::int8(), arrow::list(arrow::int8()))));
  EXPECT_TRUE(IsHashableKeyType(*arrow::dictionary(arrow::int8(), arrow::large_binary())));
}

// The fast path against a plain scalar loop over the documented building blocks.
TEST(KeyHash, MatchesScalarReferenceOnManyRows) {
  arrow::Int64Builder ib;
  arrow::StringBuilder sb;
  std::vector<int64_t> ints;
  std::vector<std::string> strs;
  for (int64_t i = 0; i < 5000; ++i) {
    const int64_t v = (i * 2654435761LL) % 100003 - 50000;
    ints.push_back(v);
    strs.push_back(std::string(static_cast<size_t>(i % 40), 'x') + std::to_string(v));
    ASSERT_OK(ib.Append(v));
    ASSERT_OK(sb.Append(strs.back()));
  }
  ASSERT_OK_AND_ASSIGN(auto ia, ib.Finish());
  ASSERT_OK_AND_ASSIGN(auto sa, sb.Finish());
  auto hashes = HashOf({ia, sa});
  for (size_t i = 0; i < ints.size(); ++i) {
    uint64_t h = kKeyHashRowSeed;
    h = Fmix64(h * 0x9E3779B97F4A7C15ULL + static_cast<uint64_t>(ints[i]));
    h = Fmix64(h * 0x9E3779B97F4A7C15ULL +
               XxHash64(reinterpret_cast<const uint8_t*>(strs[i].data()), strs[i].size(), 0));
    ASSERT_EQ(hashes[i], h) << "row " << i;
  }
}

// The fused path (hash, map and histogram in one pass over the last key column) agrees with
// Hash followed by HashToPartition, for one and several key columns of several types.
TEST(KeyHash, HashToPartitionsMatchesHashThenMap) {
  auto ints = Json(arrow::int64(), "[1, 2, null, 4, 5, 6, 7, 8, 9, 10, -3, 0]");
  auto strs =
      Json(arrow::utf8(), R"(["a", "b", "c", null, "e", "f", "g", "h", "i", "j", "", "a"])");
  auto dict = arrow::json::DictArrayFromJSONString(
                  arrow::dictionary(arrow::int8(), arrow::float64()),
                  "[0, 1, 2, null, 0, 1, 2, 0, 1, 2, 0, 1]", "[1.5, -0.0, NaN]")
                  .ValueOrDie();
  auto schema = arrow::schema({arrow::field("i", ints->type()), arrow::field("s", strs->type()),
                               arrow::field("d", dict->type())});
  auto batch = arrow::RecordBatch::Make(schema, 12, {ints, strs, dict})->Slice(1, 10);
  for (const std::vector<std::string>& keys :
       {std::vector<std::string>{"i"}, std::vector<std::string>{"s"}, std::vector<std::string>{"d"},
        std::vector<std::string>{"d", "s", "i"}}) {
    ASSERT_OK_AND_ASSIGN(auto hasher, KeyHasher::Make(keys, *schema));
    for (int32_t n : {1, 3, 64}) {
      std::vector<uint64_t> hashes(10);
      ASSERT_OK(hasher->Hash(*batch, hashes.data()));
      std::vector<PartitionId> ids(10, -1);
      std::vector<int64_t> counts(static_cast<size_t>(n), 99);
      ASSERT_OK(hasher->HashToPartitions(*batch, n, ids.data(), counts.data()));
      std::vector<int64_t> expected_counts(static_cast<size_t>(n), 0);
      for (size_t i = 0; i < 10; ++i) {
        EXPECT_EQ(ids[i], HashToPartition(hashes[i], n)) << keys[0] << " row " << i;
        ++expected_counts[HashToPartition(hashes[i], n)];
      }
      EXPECT_EQ(counts, expected_counts);
    }
  }
  ASSERT_OK_AND_ASSIGN(auto hasher, KeyHasher::Make({"i"}, *schema));
  std::vector<PartitionId> ids(10);
  std::vector<int64_t> counts(1);
  ASSERT_RAISES_WITH(Invalid, "got 0",
                     hasher->HashToPartitions(*batch, 0, ids.data(), counts.data()));
}

// The same for 8-byte integer last key columns without nulls (which have a vectorized path
// where the CPU allows), alone and after another key column, for lengths around the vector width
// and extreme values and partition counts.
TEST(KeyHash, HashToPartitionsOfWordKeysMatchesHashThenMap) {
  std::mt19937_64 rng(5);
  const int64_t rows = 103;
  arrow::Int64Builder ints;
  arrow::UInt64Builder uints;
  arrow::TimestampBuilder stamps(arrow::timestamp(arrow::TimeUnit::MICRO),
                                 arrow::default_memory_pool());
  arrow::Int32Builder first;
  for (int64_t i = 0; i < rows; ++i) {
    uint64_t v = rng();
    if (i == 0) v = 0;
    if (i == 1) v = ~uint64_t{0};
    if (i == 2) v = uint64_t{1} << 63;
    if (i == 3) v = (uint64_t{1} << 63) - 1;
    ASSERT_OK(ints.Append(static_cast<int64_t>(v)));
    ASSERT_OK(uints.Append(v * 3));
    ASSERT_OK(stamps.Append(static_cast<int64_t>(v >> 3)));
    ASSERT_OK(first.Append(static_cast<int32_t>(rng() % 7)));
  }
  arrow::ArrayVector arrays = {ints.Finish().ValueOrDie(), uints.Finish().ValueOrDie(),
                               stamps.Finish().ValueOrDie(), first.Finish().ValueOrDie()};
  auto schema = arrow::schema({arrow::field("i", arrays[0]->type()),
                               arrow::field("u", arrays[1]->type()),
                               arrow::field("t", arrays[2]->type()),
                               arrow::field("f", arrays[3]->type())});
  auto full = arrow::RecordBatch::Make(schema, rows, arrays);
  for (const std::vector<std::string>& keys :
       {std::vector<std::string>{"i"}, std::vector<std::string>{"u"},
        std::vector<std::string>{"t"}, std::vector<std::string>{"f", "i"},
        std::vector<std::string>{"i", "u", "t"}}) {
    ASSERT_OK_AND_ASSIGN(auto hasher, KeyHasher::Make(keys, *schema));
    for (int64_t length : {int64_t{0}, int64_t{1}, int64_t{7}, int64_t{8}, int64_t{9},
                           int64_t{16}, int64_t{100}}) {
      auto batch = full->Slice(3, length);
      for (int32_t n : {1, 3, 64, 1000, kMaxPartitions}) {
        std::vector<uint64_t> hashes(static_cast<size_t>(length));
        ASSERT_OK(hasher->Hash(*batch, hashes.data()));
        std::vector<PartitionId> ids(static_cast<size_t>(length), -1);
        std::vector<int64_t> counts(static_cast<size_t>(n), 99);
        ASSERT_OK(hasher->HashToPartitions(*batch, n, ids.data(), counts.data()));
        std::vector<int64_t> expected_counts(static_cast<size_t>(n), 0);
        for (int64_t i = 0; i < length; ++i) {
          const PartitionId expected = HashToPartition(hashes[static_cast<size_t>(i)], n);
          EXPECT_EQ(ids[static_cast<size_t>(i)], expected) << keys.back() << " row " << i;
          ++expected_counts[static_cast<size_t>(expected)];
        }
        EXPECT_EQ(counts, expected_counts);
      }
    }
  }
}

}  // namespace
}  // namespace sabot
