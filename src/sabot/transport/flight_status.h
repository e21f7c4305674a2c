#pragma once

#include <cstddef>

#include <arrow/status.h>

namespace sabot {

// The longest status message a server sends (bytes, after escaping); longer ones are cut. Well
// under gRPC's default 8 KiB metadata limit, which holds the message twice (grpc-message and
// Arrow's x-arrow-status-message-bin trailer).
inline constexpr size_t kMaxFlightMessageBytes = 2048;

// The status a ShuffleServer answers a Flight call with, for the `status` its handler produced:
// the one place the server's Arrow statuses become Flight (gRPC) statuses, so every client —
// Arrow C++ and pyarrow, which read the Arrow code back from Arrow's trailers, and Go, Rust
// (tonic) or Java clients, which see only the gRPC code — gets a meaningful code. The table
// (docs/wire-protocol.md, "Errors", also says what each client raises):
//
//   Arrow status on the server                          gRPC status
//   Invalid, IndexError, TypeError, CapacityError,
//     SerializationError                                INVALID_ARGUMENT (clients see Invalid)
//   KeyError                                            NOT_FOUND
//   AlreadyExists                                       ALREADY_EXISTS
//   NotImplemented                                      UNIMPLEMENTED
//   Cancelled                                           CANCELLED
//   IOError marked retryable (ShuffleErrorDetail),
//     OutOfMemory                                       UNAVAILABLE (Arrow clients: same code)
//   IOError (other), UnknownError and the rest          INTERNAL (Arrow clients: same code)
//   a status that already carries a FlightStatusDetail  its own (Unauthenticated, Unavailable...)
//
// IndexError and the like become Invalid because Arrow's Flight server can send only the gRPC
// codes above: without this they reach clients as UNKNOWN (pyarrow FlightServerError). The
// message is kept, escaped to printable ASCII and cut to kMaxFlightMessageBytes
// (SanitizeMessage), so a message quoting hostile input is always valid UTF-8 and never exceeds
// gRPC's metadata limits. OK stays OK. A pure function; safe for concurrent use.
arrow::Status ToFlightStatus(const arrow::Status& status);

}  // namespace sabot
