#pragma once

// `sabot run JOB.yaml`: reads a job file (docs/job-file.md), and either prints its execution
// graph (--explain) or runs it in this process with the local executor, showing progress on
// stderr and printing a summary (per operator rows and time, per shuffle edge the N x M row
// matrix, skew, spill and time blocked) on stdout. Exit status: 0 done, 1 the job failed,
// 2 a bad job file or bad options, 130/143 stopped by SIGINT/SIGTERM (after cleaning up).

#include <CLI/CLI.hpp>

namespace sabot {

void AddRunCommand(CLI::App& app);

}  // namespace sabot
