#include "sabot/dataflow/job_report.h"

#include <algorithm>

namespace sabot {

int64_t EdgeReport::total_rows() const {
  int64_t total = 0;
  for (const std::vector<int64_t>& writer : rows) {
    for (int64_t n : writer) total += n;
  }
  return total;
}

double EdgeReport::skew() const {
  // Rows per partition: the column sums of the N x M matrix.
  if (rows.empty()) return 0;
  size_t partitions = static_cast<size_t>(std::max(num_partitions, 0));
  for (const std::vector<int64_t>& writer : rows) partitions = std::max(partitions, writer.size());
  if (partitions == 0) return 0;
  std::vector<int64_t> per_partition(partitions, 0);
  for (const std::vector<int64_t>& writer : rows) {
    for (size_t j = 0; j < writer.size(); ++j) per_partition[j] += writer[j];
  }
  int64_t total = 0, largest = 0;
  for (int64_t n : per_partition) {
    total += n;
    largest = std::max(largest, n);
  }
  if (total == 0) return 0;
  const double mean = static_cast<double>(total) / static_cast<double>(partitions);
  return static_cast<double>(largest) / mean;
}

}  // namespace sabot
