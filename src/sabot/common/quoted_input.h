#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace sabot {

// How much of an input an error message quotes.
inline constexpr size_t kMaxQuotedBytes = 64;

// `input` made safe to quote in an error message that may cross the wire (a gRPC status message
// must be valid UTF-8 and small enough for gRPC's metadata limit): wrapped in single quotes;
// printable ASCII kept as is except '\' and '\'', which are escaped; every other byte (control
// characters, DEL, anything >= 0x80, hence any non-UTF-8 sequence) written as \xNN. At most
// `max_bytes` bytes of the input are quoted; a longer input is cut there and followed by
// "... (N bytes)". Examples: 'abc', 'a\x00b', '/shuffle/aaa...' (1048576 bytes).
//
// A pure function; safe for concurrent use.
std::string QuoteInput(std::string_view input, size_t max_bytes = kMaxQuotedBytes);

// `text` with every byte outside printable ASCII (plus tab) written as \xNN, and cut to at most
// `max_bytes` bytes of output followed by "... (N bytes)". For a whole message that may carry
// text from elsewhere (a peer's schema, a file path) before it leaves the process.
std::string SanitizeMessage(std::string_view text, size_t max_bytes);

}  // namespace sabot
