#pragma once

#include <chrono>
#include <cstdint>

#include <arrow/result.h>

#include "sabot/verify/generated_shuffle_check.h"

namespace sabot {

// The ceilings `sabot shuffle` prints its throughput against, measured in the same run with the
// same generated data: what merely moving the job's bytes costs on this machine.
//
// Both use a working set of distinct generated batches per thread or stream (up to
// kCeilingWorkingSetBytes, larger than the caches' share of one core, so the bytes come from
// memory as the shuffle's do) and cycle through it until as many batches as the job's have moved
// (the bytes are counted as they move, so the rate is exact even when batch sizes vary).
// Generating the batches is not timed.

// What one ceiling measurement moved, how, and in how long.
struct CeilingMeasurement {
  int64_t rows = 0;
  int64_t bytes = 0;        // batch buffer bytes moved (as ShuffleJobReport::bytes counts them)
  int32_t parallelism = 0;  // threads or streams
  std::chrono::nanoseconds elapsed{0};
  // CPU time (user + system) of this whole process during `elapsed` (getrusage): both ends of a
  // Flight measurement, gRPC's threads included; the setup before the clock is not in it.
  std::chrono::nanoseconds cpu{0};

  double bytes_per_second() const;
};

inline constexpr int64_t kCeilingWorkingSetBytes = 32 << 20;

// As many batches as `job` has, copied once each with memcpy, by `threads` threads at once (writer w's batches
// by thread w % threads). Invalid for threads < 1.
arrow::Result<CeilingMeasurement> MeasureMemcpyCeiling(const GeneratedJob& job, int32_t threads);

// As many batches as `job` has, streamed through plain Arrow Flight: a FlightServerBase in this process
// serving, by DoGet over loopback TCP, `streams` streams of the job's batches (writer w's on
// stream w % streams) to as many client threads. No Sabot code on the path: Arrow's IPC over
// gRPC, the transport's ceiling.
arrow::Result<CeilingMeasurement> MeasureFlightCeiling(const GeneratedJob& job, int32_t streams);

// The same batches through Sabot's distributed shuffle edge alone, to set against
// MeasureFlightCeiling: a ShuffleServer in this process, `streams` pipelined channels of the
// FlightTransport (DoExchange over loopback TCP, credits as in a job: `exclusive_credits` per
// channel), writer w's batches on channel w % streams, one writer thread and one reader thread per
// channel. The batches are encoded as IPC blocks before the clock (in a job the writer's
// partition buffers seal them so, before the edge), so the time covers handing blocks to the
// channel, waiting for credit, sending, receiving and decoding them. Bytes as the ceilings count
// them (the decoded batches' buffers). Invalid for streams < 1 or exclusive_credits < 1.
arrow::Result<CeilingMeasurement> MeasurePipelinedFlightEdge(const GeneratedJob& job,
                                                             int32_t streams,
                                                             int32_t exclusive_credits = 2);

}  // namespace sabot
