#pragma once

// The text `sabot run` shows about a job: a progress block while it runs (rows/s per operator,
// tasks, backpressure per shuffle edge) and the summary when it ends (per operator rows in/out
// and time; per shuffle edge the N x M row matrix, skew, bytes, spill and time blocked).
// Names and other user text are escaped, so the output is printable ASCII (plus the ANSI
// control sequences of a terminal progress block).

#include <chrono>
#include <cstdint>
#include <string>

#include "sabot/dataflow/job_report.h"

namespace sabot {

// The most writers (rows) and partitions (columns) of an edge's row matrix the summary prints;
// a larger matrix is cut to its first kMaxMatrixSide x kMaxMatrixSide cells, with a note saying
// what was left out and a total row over every writer.
inline constexpr int32_t kMaxMatrixSide = 8;

// The end-of-job summary. A pure function; ends with a newline. An operator with late rows
// (OperatorReport::late_rows > 0) gets a line "late rows: <operator> <count>" after the
// operators' table.
std::string FormatJobSummary(const JobReport& report);

// Renders successive JobProgress snapshots of one job.
//
// On a terminal (`terminal` true) every Update returns the whole block, preceded by the ANSI
// sequences that move the cursor back over the block drawn before and clear it, so the block
// redraws in place; Finish returns the sequence that erases the last block. Otherwise (a file,
// a pipe, a CI log) Update returns plain lines, at most once every `plain_interval` of the
// job's elapsed time (the first snapshot and the others in between return ""), and Finish "".
//
// Rates (rows/s) are taken between the previous snapshot given to Update and this one (from the
// start for the first). Not thread-safe: one thread calls Update and Finish.
class ProgressRenderer {
 public:
  // `width`: the terminal's columns; on a terminal, longer lines are cut to width - 1 characters
  // so none wraps (a wrapped line would throw off the redraw). 0: no limit.
  explicit ProgressRenderer(bool terminal,
                            std::chrono::nanoseconds plain_interval = std::chrono::seconds(5),
                            int32_t width = 0)
      : terminal_(terminal), plain_interval_(plain_interval), width_(width) {}

  std::string Update(const JobProgress& progress);
  std::string Finish();

  // The block for `progress` against `previous` (nullptr: from the start), without control
  // sequences; one line per entry, each ending with a newline.
  static std::string FormatBlock(const JobProgress& progress, const JobProgress* previous);

 private:
  bool terminal_;
  std::chrono::nanoseconds plain_interval_;
  int32_t width_;
  bool has_previous_ = false;
  JobProgress previous_;
  std::chrono::nanoseconds last_printed_{-1};
  int32_t lines_drawn_ = 0;
};

// 1234567 -> "1,234,567".
std::string FormatCount(int64_t n);
// Bytes in B, KiB, MiB or GiB with one decimal above 1 KiB: "512 B", "1.5 KiB", "12.0 MiB".
std::string FormatBytes(int64_t bytes);
// Seconds with three decimals: "1.234 s".
std::string FormatSeconds(std::chrono::nanoseconds duration);

}  // namespace sabot
