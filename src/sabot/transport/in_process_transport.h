#pragma once

#include <memory>
#include <string>

#include "sabot/transport/channel.h"
#include "sabot/transport/channel_state.h"

namespace sabot {

// The local-mode transport: writer and reader live in one process and blocks are handed over by
// reference, never serialized (a block that arrives encoded is decoded by the reader). Credits,
// backpressure, floating credits, end-of-stream and errors behave as over Flight; see channel.h.
//
// Thread safety: safe for concurrent use. Lifetime: must outlive the channels it opened.
class InProcessTransport : public Transport {
 public:
  static arrow::Result<std::unique_ptr<InProcessTransport>> Make();

  std::string name() const override { return "in-process"; }
  arrow::Result<std::unique_ptr<ChannelWriter>> OpenWriter(
      const StreamKey& key, const std::shared_ptr<arrow::Schema>& schema,
      const ChannelOptions& options) override;
  arrow::Result<std::unique_ptr<ChannelReader>> OpenReader(const StreamKey& key,
                                                           const ChannelOptions& options) override;

  // Channels with a side still open (0 once every writer and reader is gone).
  int64_t num_open_channels() const { return hub_.num_channels(); }

 private:
  InProcessTransport() = default;

  ChannelHub hub_;
};

// The writing and reading ends over a ChannelState of `hub`; shared by both transports (the
// Flight transport's writers are local to the server that serves them). `hub` must outlive them.
std::unique_ptr<ChannelWriter> MakeLocalChannelWriter(ChannelHub* hub,
                                                      std::shared_ptr<ChannelState> state,
                                                      const ChannelOptions& options);
std::unique_ptr<ChannelReader> MakeLocalChannelReader(ChannelHub* hub,
                                                      std::shared_ptr<ChannelState> state,
                                                      const ChannelOptions& options);

}  // namespace sabot
