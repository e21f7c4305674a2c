#include "sabot/dataflow/job_report_format.h"

#include <algorithm>
#include <cstdio>
#include <vector>

#include "sabot/common/quoted_input.h"

namespace sabot {

namespace {

constexpr size_t kMaxNameBytes = 64;

std::string Printable(const std::string& text) { return SanitizeMessage(text, kMaxNameBytes); }

// Columns of text, left- or right-aligned, two spaces apart, indented by `indent`; trailing
// spaces removed.
class Table {
 public:
  explicit Table(std::vector<bool> right_aligned) : right_(std::move(right_aligned)) {}
  void Add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  std::string Render(const std::string& indent) const {
    std::vector<size_t> width(right_.size(), 0);
    for (const auto& row : rows_) {
      for (size_t c = 0; c < row.size() && c < width.size(); ++c) {
        width[c] = std::max(width[c], row[c].size());
      }
    }
    std::string out;
    for (const auto& row : rows_) {
      std::string line = indent;
      for (size_t c = 0; c < row.size() && c < width.size(); ++c) {
        if (c > 0) line += "  ";
        std::string pad(width[c] - row[c].size(), ' ');
        line += right_[c] ? pad + row[c] : row[c] + pad;
      }
      while (!line.empty() && line.back() == ' ') line.pop_back();
      out += line + "\n";
    }
    return out;
  }

 private:
  std::vector<bool> right_;
  std::vector<std::vector<std::string>> rows_;
};

double Seconds(std::chrono::nanoseconds d) { return static_cast<double>(d.count()) / 1e9; }

std::string Fixed(double value, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*f", decimals, value);
  return buf;
}

std::string EdgeName(const EdgeReport& e) { return Printable(e.from) + " -> " + Printable(e.to); }

std::string Matrix(const EdgeReport& e) {
  if (e.rows.empty()) return "";
  const size_t writers = e.rows.size();
  size_t partitions = static_cast<size_t>(std::max(e.num_partitions, 0));
  for (const auto& row : e.rows) partitions = std::max(partitions, row.size());
  const size_t shown_w = std::min(writers, static_cast<size_t>(kMaxMatrixSide));
  const size_t shown_p = std::min(partitions, static_cast<size_t>(kMaxMatrixSide));
  std::vector<bool> right(shown_p + 1, true);
  right[0] = false;
  Table table(right);
  std::vector<std::string> header = {"rows"};
  for (size_t j = 0; j < shown_p; ++j) header.push_back("p" + std::to_string(j));
  table.Add(header);
  std::vector<int64_t> totals(shown_p, 0);
  for (size_t i = 0; i < writers; ++i) {
    for (size_t j = 0; j < shown_p && j < e.rows[i].size(); ++j) totals[j] += e.rows[i][j];
  }
  for (size_t i = 0; i < shown_w; ++i) {
    std::vector<std::string> row = {"w" + std::to_string(i)};
    for (size_t j = 0; j < shown_p; ++j) {
      row.push_back(FormatCount(j < e.rows[i].size() ? e.rows[i][j] : 0));
    }
    table.Add(row);
  }
  std::vector<std::string> total = {"total"};
  for (int64_t n : totals) total.push_back(FormatCount(n));
  table.Add(total);
  std::string out = table.Render("    ");
  if (shown_w < writers || shown_p < partitions) {
    out += "    (" + std::to_string(writers) + "x" + std::to_string(partitions) +
           " matrix cut to its first " + std::to_string(shown_w) + " writers and " +
           std::to_string(shown_p) + " partitions; the total row counts every writer)\n";
  }
  return out;
}

}  // namespace

std::string FormatCount(int64_t n) {
  const uint64_t magnitude = n < 0 ? uint64_t{0} - static_cast<uint64_t>(n) : static_cast<uint64_t>(n);
  std::string digits = std::to_string(magnitude);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return n < 0 ? "-" + out : out;
}

std::string FormatBytes(int64_t bytes) {
  if (bytes < 1024) return std::to_string(bytes) + " B";
  constexpr const char* kUnits[] = {"KiB", "MiB", "GiB", "TiB"};
  double value = static_cast<double>(bytes) / 1024;
  size_t unit = 0;
  while (value >= 1024 && unit + 1 < std::size(kUnits)) {
    value /= 1024;
    ++unit;
  }
  return Fixed(value, 1) + " " + kUnits[unit];
}

std::string FormatSeconds(std::chrono::nanoseconds duration) {
  return Fixed(Seconds(duration), 3) + " s";
}

std::string FormatJobSummary(const JobReport& report) {
  std::string out = "job " + Printable(report.job_id) + " finished in " +
                    FormatSeconds(report.wall) + "; peak memory " +
                    FormatBytes(report.peak_memory_bytes) + " of a " +
                    FormatBytes(report.memory_budget_bytes) + " budget\n";
  out += "operators:\n";
  Table ops({false, false, true, true, true, true});
  ops.Add({"operator", "kind", "tasks", "rows in", "rows out", "time"});
  for (const OperatorReport& op : report.operators) {
    ops.Add({Printable(op.name), std::string(OperatorKindName(op.kind)),
             std::to_string(op.parallelism), FormatCount(op.rows_in), FormatCount(op.rows_out),
             FormatSeconds(op.busy)});
  }
  out += ops.Render("  ");
  // State an operator spilled because it outgrew its budget, under the operators that did.
  for (const OperatorReport& op : report.operators) {
    if (op.state_spilled_bytes > 0) {
      out += "  " + Printable(op.name) + ": state spilled " + FormatBytes(op.state_spilled_bytes) +
             "\n";
    }
  }
  // Rows too late for their window: counted (and written to the window's late output when it
  // has one), never dropped silently. Shown for the operators that had any.
  for (const OperatorReport& op : report.operators) {
    if (op.late_rows > 0) {
      out += "late rows: " + Printable(op.name) + " " + FormatCount(op.late_rows) + "\n";
    }
  }
  // Checkpoints and restarts (docs/fault-tolerance.md): shown for jobs that took any.
  const CheckpointReport& chk = report.checkpoints;
  if (chk.completed > 0 || chk.failed > 0 || chk.restarts > 0) {
    out += "checkpoints: " + FormatCount(chk.completed) + " completed, " +
           FormatCount(chk.failed) + " failed";
    if (chk.last_id != kNoCheckpoint) {
      out += "; last #" + std::to_string(chk.last_id) + " " + FormatBytes(chk.last_bytes) +
             " in " + FormatSeconds(chk.last_duration);
    }
    out += "; restarts " + std::to_string(chk.restarts);
    if (chk.restarts > 0) {
      out += chk.restored_from != kNoCheckpoint
                 ? " (last from checkpoint #" + std::to_string(chk.restored_from) + ")"
                 : " (last from the start: no checkpoint yet)";
    }
    out += "\n";
  }
  size_t shuffles = 0;
  for (const EdgeReport& e : report.edges) shuffles += e.chained ? 0 : 1;
  out += "edges: " + std::to_string(report.edges.size()) + " (" + std::to_string(shuffles) +
         (shuffles == 1 ? " shuffle" : " shuffles") + ")\n";
  for (const EdgeReport& e : report.edges) {
    if (e.chained) {
      out += "  " + EdgeName(e) + "  " + Printable(e.type) + ", chained (no shuffle)\n";
      continue;
    }
    out += "  " + EdgeName(e) + "  " + Printable(e.type) + " " + std::to_string(e.num_writers) +
           "x" + std::to_string(e.num_partitions) + "  " + FormatCount(e.total_rows()) +
           " rows  " + FormatBytes(e.bytes) + "  skew " + Fixed(e.skew(), 2) + "  spilled " +
           FormatBytes(e.bytes_spilled) + "  blocked " + FormatSeconds(e.blocked) + "\n";
    out += Matrix(e);
  }
  return out;
}

std::string ProgressRenderer::FormatBlock(const JobProgress& progress,
                                          const JobProgress* previous) {
  std::string out = "elapsed " + Fixed(Seconds(progress.elapsed), 1) + " s  tasks: " +
                    std::to_string(progress.tasks_running) + " running, " +
                    std::to_string(progress.tasks_finished) + " finished of " +
                    std::to_string(progress.tasks_total) + "\n";
  const double interval =
      Seconds(progress.elapsed - (previous ? previous->elapsed : std::chrono::nanoseconds(0)));
  Table ops({false, true, true, true});
  for (const OperatorReport& op : progress.operators) {
    int64_t before = 0;
    if (previous) {
      for (const OperatorReport& p : previous->operators) {
        if (p.id == op.id) before = p.rows_out;
      }
    }
    std::string rate = interval > 0 ? FormatCount(static_cast<int64_t>(
                                          static_cast<double>(op.rows_out - before) / interval))
                                    : "0";
    ops.Add({Printable(op.name), FormatCount(op.rows_in) + " in",
             FormatCount(op.rows_out) + " out", rate + " rows/s"});
  }
  out += ops.Render("  ");
  for (const EdgeReport& e : progress.edges) {
    if (e.chained) continue;
    std::chrono::nanoseconds before{0};
    if (previous) {
      for (const EdgeReport& p : previous->edges) {
        if (p.shuffle_id == e.shuffle_id) before = p.blocked;
      }
    }
    double share = 0;
    if (interval > 0 && e.num_writers > 0) {
      share = Seconds(e.blocked - before) / (interval * e.num_writers) * 100;
      share = std::clamp(share, 0.0, 100.0);
    }
    out += "  " + EdgeName(e) + "  blocked " + FormatSeconds(e.blocked) + " (" +
           Fixed(share, 0) + "% of writer time)\n";
  }
  return out;
}

std::string ProgressRenderer::Update(const JobProgress& progress) {
  std::string out;
  if (terminal_) {
    if (lines_drawn_ > 0) out = "\x1b[" + std::to_string(lines_drawn_) + "F\x1b[J";
  } else {
    std::chrono::nanoseconds since =
        progress.elapsed - (last_printed_.count() < 0 ? std::chrono::nanoseconds(0) : last_printed_);
    if (since < plain_interval_) return "";
    last_printed_ = progress.elapsed;
  }
  std::string block = FormatBlock(progress, has_previous_ ? &previous_ : nullptr);
  if (terminal_ && width_ > 1) {
    std::string cut;
    size_t start = 0;
    while (start < block.size()) {
      size_t end = block.find('\n', start);
      std::string_view line(block.data() + start, end - start);
      cut.append(line.substr(0, static_cast<size_t>(width_ - 1)));
      cut += '\n';
      start = end + 1;
    }
    block = std::move(cut);
  }
  lines_drawn_ = static_cast<int32_t>(std::count(block.begin(), block.end(), '\n'));
  previous_ = progress;
  has_previous_ = true;
  return out + block;
}

std::string ProgressRenderer::Finish() {
  if (!terminal_ || lines_drawn_ == 0) return "";
  std::string out = "\x1b[" + std::to_string(lines_drawn_) + "F\x1b[J";
  lines_drawn_ = 0;
  return out;
}

}  // namespace sabot
