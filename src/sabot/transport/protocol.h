#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <arrow/buffer.h>
#include <arrow/result.h>
#include <arrow/status.h>

#include "sabot/common/ids.h"

namespace sabot {

// The wire vocabulary of the Flight transport: ticket and descriptor paths, the control
// messages of pipelined channels, action names. docs/wire-protocol.md describes them in prose;
// this file is the one place the code spells them. Everything here is a pure function or an
// immutable value: safe for concurrent use.

// The Flight server port an agent listens on unless told otherwise.
inline constexpr int kDefaultShufflePort = 8816;

// The longest ticket or descriptor path accepted (bytes, counting one '/' per component); the
// longest valid path is about 200 bytes.
inline constexpr size_t kMaxPathBytes = 512;

// What a ticket or descriptor path names: a partition of a shuffle, optionally narrowed to the
// stream of one writer task attempt.
struct PartitionPath {
  std::string shuffle_id;
  int32_t partition_id = 0;
  std::optional<int32_t> writer_task;
  std::optional<int32_t> writer_attempt;

  // "/shuffle/{shuffle_id}/partition/{partition_id}[/writer/{task}/attempt/{attempt}]"
  std::string ToString() const;
  // The same as path components: {"shuffle", id, "partition", "3", ...}.
  std::vector<std::string> ToComponents() const;

  // Parses ToString()'s format. Invalid, quoting the input (escaped and cut, QuoteInput), when
  // it is malformed: longer than kMaxPathBytes (checked before anything else), wrong keywords,
  // a bad shuffle id (see ValidateId), a number that is not plain decimal digits (a sign, a
  // leading zero, over 2^31 - 1), a writer without an attempt, trailing components. Each path
  // has exactly one spelling, so ToString(Parse(t)) == t.
  static arrow::Result<PartitionPath> Parse(std::string_view text);
  static arrow::Result<PartitionPath> FromComponents(const std::vector<std::string>& components);

  friend bool operator==(const PartitionPath&, const PartitionPath&) = default;
};

// Per-shuffle compression of IPC bodies. The IPC format records the codec in each message, so a
// reader needs no negotiation to decode; the server applies the shuffle's codec when it must
// encode (batches pushed with DoPut, unencoded in-process blocks) and advertises it in
// FlightInfo's app_metadata.
enum class Compression : int32_t { kNone = 0, kLz4Frame = 1, kZstd = 2 };

std::string_view CompressionName(Compression compression);  // "none", "lz4_frame", "zstd"
arrow::Result<Compression> ParseCompression(std::string_view name);

// Control messages of a pipelined channel (DoExchange). Each Flight message of the exchange
// carries one in its app_metadata: an 8-byte header (kind, value; int32 little-endian) followed
// by the payload.
enum class ChannelMessageKind : int32_t {
  kCredit = 1,   // reader -> writer: value = buffers the reader can accept in addition
  kSchema = 2,   // writer -> reader: payload = the stream's IPC schema message
  kData = 3,     // writer -> reader: value = writer backlog after this block; payload = block,
                 // or none when the block is the FlightData's IPC record batch (wire-protocol.md)
  kBacklog = 4,  // writer -> reader: value = blocks waiting for credit (no credit left)
  kEnd = 5,      // writer -> reader: end of stream; nothing follows
  kError = 6,    // writer -> reader: the stream failed; payload = the message. The reader
                 // half-closes and the call then ends with the failure as its Flight status.
  kEvent = 7,    // writer -> reader (DoExchange): value = writer backlog after it; payload = the
                 // event's opaque bytes (none for an empty event). Takes a credit like kData.
                 // Also the app_metadata of the zero-row record batch that stands for an event
                 // in a DoGet stream (value 0).
};

inline constexpr int64_t kChannelHeaderBytes = 8;

struct ChannelMessage {
  ChannelMessageKind kind = ChannelMessageKind::kCredit;
  int32_t value = 0;
  std::shared_ptr<arrow::Buffer> payload;  // a slice of the received buffer; may be null
};

// Header and payload concatenated into one buffer allocated from `pool`.
arrow::Result<std::shared_ptr<arrow::Buffer>> EncodeChannelMessage(
    ChannelMessageKind kind, int32_t value, const arrow::Buffer* payload,
    arrow::MemoryPool* pool = arrow::default_memory_pool());
// Invalid when the buffer is shorter than the header or the kind is unknown.
arrow::Result<ChannelMessage> DecodeChannelMessage(const std::shared_ptr<arrow::Buffer>& buffer);

// The event bytes of a DoGet chunk's app_metadata: an EVENT message (value 0) whose payload is
// the event (an empty buffer when it has none). Invalid, saying why, for anything else or a
// payload over kMaxEventBytes.
arrow::Result<std::shared_ptr<arrow::Buffer>> DecodeEventMetadata(
    const std::shared_ptr<arrow::Buffer>& app_metadata);

// The most credits one CREDIT message may grant: a reader grants its exclusive credits (at most
// 2^16, ShuffleOptions) once, then one at a time.
inline constexpr int32_t kMaxCreditGrant = 1 << 16;

// The credits a reader's DoExchange message grants. Invalid, saying why, for anything a reader
// may not send: not a channel message, a kind other than CREDIT, a value outside
// [1, kMaxCreditGrant], a payload. The server ends a channel whose reader sends one.
arrow::Result<int32_t> DecodeCreditMessage(const std::shared_ptr<arrow::Buffer>& buffer);

// The largest DoAction body a server reads (bytes): far above any control message (a shuffle
// descriptor with RANGE boundaries for the most partitions is a few MiB), and checked before the
// body is copied or parsed, so a hostile body costs the server only what gRPC received.
inline constexpr int64_t kMaxActionBodyBytes = int64_t{16} << 20;

// DoAction types.
inline constexpr std::string_view kActionReleaseShuffle = "release_shuffle";  // body: shuffle id
inline constexpr std::string_view kActionStats = "stats";    // result: JSON object of counters
inline constexpr std::string_view kActionHealth = "health";  // result: "ok"

// The request header carrying the bearer token: "authorization: Bearer <token>".
inline constexpr std::string_view kAuthorizationHeader = "authorization";

}  // namespace sabot
