#pragma once

namespace sabot::testing {

// True when the benchmark binary runs as a smoke test (--sabot_smoke): benchmarks should then
// use tiny inputs. Their figures are meaningless in that mode.
bool IsSmokeRun();

}  // namespace sabot::testing
