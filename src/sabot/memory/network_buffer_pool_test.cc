#include "sabot/memory/network_buffer_pool.h"

#include <atomic>
#include <chrono>
#include <future>
#include <thread>

#include <gtest/gtest.h>

#include "sabot/common/error_detail.h"
#include "sabot/testing/assertions.h"

namespace sabot {
namespace {

using std::chrono::milliseconds;

NetworkBufferPoolOptions SmallPool() {
  NetworkBufferPoolOptions o;
  o.segment_size = 32 * 1024;
  o.total_segments = 12;
  o.exclusive_segments_per_channel = 2;
  o.floating_segments_per_shuffle = 4;
  o.request_timeout = milliseconds(30000);
  return o;
}

// Waits until `pool` reports `n` waiting producers (the producer thread is parked on the
// condition variable), polling briefly.
void AwaitWaiting(const NetworkBufferPool& pool, int64_t n) {
  while (pool.stats().waiting_producers != n) std::this_thread::sleep_for(milliseconds(1));
}

TEST(NetworkBufferPoolTest, SizesFromTheBudget) {
  NetworkBufferPoolOptions o;
  ASSERT_OK_AND_ASSIGN(auto pool, NetworkBufferPool::Make(o, 256 << 20));
  EXPECT_EQ(pool->total_segments(), (256 << 20) / (32 << 10));
  EXPECT_EQ(pool->SegmentsFor(1), 1);
  EXPECT_EQ(pool->SegmentsFor(32 << 10), 1);
  EXPECT_EQ(pool->SegmentsFor((32 << 10) + 1), 2);
  ASSERT_RAISES_WITH(Invalid, "segment size", ([] {
                       NetworkBufferPoolOptions bad;
                       bad.segment_size = 10;
                       return NetworkBufferPool::Make(bad, 1 << 20).status();
                     }()));
}

TEST(NetworkBufferPoolTest, ExclusiveFirstThenFloating) {
  MemoryMetrics metrics;
  ASSERT_OK_AND_ASSIGN(auto pool, NetworkBufferPool::Make(SmallPool(), 0, &metrics));
  ASSERT_OK_AND_ASSIGN(auto channel, pool->RegisterChannel("s1"));
  EXPECT_EQ(pool->stats().set_aside_segments, 2);
  ASSERT_OK_AND_ASSIGN(auto r1, channel->Reserve(1));
  EXPECT_EQ(r1.exclusive_segments(), 1);
  EXPECT_EQ(r1.floating_segments(), 0);
  ASSERT_OK_AND_ASSIGN(auto r2, channel->Reserve(3));
  EXPECT_EQ(r2.exclusive_segments(), 1);
  EXPECT_EQ(r2.floating_segments(), 2);
  auto snapshot = metrics.Snapshot();
  EXPECT_EQ(snapshot.shuffles["s1"].exclusive_segments_in_use, 2);
  EXPECT_EQ(snapshot.shuffles["s1"].floating_segments_in_use, 2);
  // The shuffle may borrow 4 floating segments in all: 2 more, not 3.
  ASSERT_OK_AND_ASSIGN(auto none, channel->TryReserve(3));
  EXPECT_TRUE(none.empty());
  ASSERT_OK_AND_ASSIGN(auto r3, channel->TryReserve(2));
  EXPECT_EQ(r3.floating_segments(), 2);
  r1.Release();
  r2 = SegmentReservation();
  r3.Release();
  EXPECT_EQ(pool->stats().exclusive_in_use, 0);
  EXPECT_EQ(pool->stats().floating_in_use, 0);
  snapshot = metrics.Snapshot();
  EXPECT_EQ(snapshot.shuffles["s1"].exclusive_segments_in_use, 0);
  EXPECT_EQ(snapshot.shuffles["s1"].floating_segments_in_use, 0);
}

TEST(NetworkBufferPoolTest, ShufflesHaveSeparateFloatingQuotasButShareThePool) {
  ASSERT_OK_AND_ASSIGN(auto pool, NetworkBufferPool::Make(SmallPool(), 0));
  ASSERT_OK_AND_ASSIGN(auto a, pool->RegisterChannel("a"));
  ASSERT_OK_AND_ASSIGN(auto b, pool->RegisterChannel("b"));
  // 12 segments, 4 set aside: 8 shared. Each shuffle may borrow 4.
  ASSERT_OK_AND_ASSIGN(auto ra, a->Reserve(6));
  ASSERT_OK_AND_ASSIGN(auto rb, b->Reserve(6));
  EXPECT_EQ(pool->stats().floating_in_use, 8);
  // Shuffle b's quota is spent and the shared segments are gone: b waits (TryReserve: empty),
  // while a's exclusive segments... are in use too, so a also waits.
  ASSERT_OK_AND_ASSIGN(auto more_b, b->TryReserve(1));
  EXPECT_TRUE(more_b.empty());
  ra.Release();
  ASSERT_OK_AND_ASSIGN(auto more_b2, b->TryReserve(1));
  EXPECT_TRUE(more_b2.empty()) << "b's floating quota is spent even though segments are free";
  ASSERT_OK_AND_ASSIGN(auto more_a, a->TryReserve(6));
  EXPECT_EQ(more_a.segments(), 6);
}

TEST(NetworkBufferPoolTest, RegistrationFailsWhenExclusiveSegmentsCannotBeSetAside) {
  ASSERT_OK_AND_ASSIGN(auto pool, NetworkBufferPool::Make(SmallPool(), 0));
  std::vector<std::unique_ptr<NetworkChannel>> channels;
  for (int i = 0; i < 6; ++i) {
    ASSERT_OK_AND_ASSIGN(auto ch, pool->RegisterChannel("s"));
    channels.push_back(std::move(ch));
  }
  ASSERT_RAISES_WITH(CapacityError, "cannot set aside", pool->RegisterChannel("s").status());
  channels.pop_back();
  ASSERT_OK(pool->RegisterChannel("s").status());
  ASSERT_RAISES_WITH(Invalid, "shuffle id", pool->RegisterChannel("../etc").status());
}

TEST(NetworkBufferPoolTest, OversizedRequestIsAnErrorNotADeadlock) {
  ASSERT_OK_AND_ASSIGN(auto pool, NetworkBufferPool::Make(SmallPool(), 0));
  ASSERT_OK_AND_ASSIGN(auto channel, pool->RegisterChannel("s1"));
  EXPECT_EQ(channel->max_block_bytes(), 6 * 32 * 1024);
  ASSERT_RAISES_WITH(Invalid, "can never be reserved", channel->Reserve(7).status());
  ASSERT_RAISES_WITH(Invalid, "can never be reserved",
                     channel->ReserveBytes(6 * 32 * 1024 + 1).status());
}

TEST(NetworkBufferPoolTest, BackpressureBlocksTheProducerUntilAConsumerReleases) {
  MemoryMetrics metrics;
  ASSERT_OK_AND_ASSIGN(auto pool, NetworkBufferPool::Make(SmallPool(), 0, &metrics));
  ASSERT_OK_AND_ASSIGN(auto channel, pool->RegisterChannel("s1"));
  ASSERT_OK_AND_ASSIGN(auto held, channel->Reserve(6));  // everything this channel may hold

  std::atomic<bool> granted{false};
  auto producer = std::async(std::launch::async, [&]() -> arrow::Status {
    ARROW_ASSIGN_OR_RAISE(auto r, channel->Reserve(2));
    granted = true;
    return r.segments() == 2 ? arrow::Status::OK() : arrow::Status::Invalid("wrong size");
  });
  AwaitWaiting(*pool, 1);
  EXPECT_FALSE(granted.load()) << "the producer must wait while the segments are taken";
  held.Release();  // the consumer frees its buffers
  ASSERT_OK(producer.get());
  EXPECT_TRUE(granted.load());
  auto snapshot = metrics.Snapshot();
  EXPECT_EQ(snapshot.shuffles["s1"].blocked_waits, 1);
  EXPECT_GT(snapshot.shuffles["s1"].blocked_nanos, 0);
  EXPECT_EQ(snapshot.agent.blocked_waits, 1);
}

TEST(NetworkBufferPoolTest, TimeoutEndsTheWaitWithAClearError) {
  ASSERT_OK_AND_ASSIGN(auto pool, NetworkBufferPool::Make(SmallPool(), 0));
  ASSERT_OK_AND_ASSIGN(auto channel, pool->RegisterChannel("s1"));
  ASSERT_OK_AND_ASSIGN(auto held, channel->Reserve(6));
  auto result = channel->Reserve(1, milliseconds(20));
  ASSERT_RAISES_WITH(IOError, "timed out after 20 ms waiting for 1 network buffer segments",
                     result.status());
  const auto* detail = ShuffleErrorDetail::FromStatus(result.status());
  ASSERT_NE(detail, nullptr);
  EXPECT_EQ(detail->context().shuffle_id, "s1");
  EXPECT_TRUE(detail->context().retryable);
  EXPECT_EQ(pool->stats().waiting_producers, 0);
}

// A producer waiting for segments leaves at once when its channel is cancelled (say, because
// another task of the job failed), with a Cancelled status naming the shuffle and the cause,
// long before its timeout; other channels' waits are untouched.
TEST(NetworkBufferPoolTest, CancelEndsAWaitForSegments) {
  ASSERT_OK_AND_ASSIGN(auto pool, NetworkBufferPool::Make(SmallPool(), 0));
  ASSERT_OK_AND_ASSIGN(auto channel, pool->RegisterChannel("s1"));
  ASSERT_OK_AND_ASSIGN(auto other, pool->RegisterChannel("s1"));
  ASSERT_OK_AND_ASSIGN(auto held, channel->Reserve(6));  // the shuffle's floating ones too
  ASSERT_OK_AND_ASSIGN(auto other_held, other->Reserve(2));
  // An hour: before the fix the wait ended only at the timeout, so this test hung.
  auto waiting = std::async(std::launch::async,
                            [&] { return channel->Reserve(1, std::chrono::hours(1)).status(); });
  auto other_waiting =
      std::async(std::launch::async, [&] { return other->Reserve(1, milliseconds(30000)); });
  AwaitWaiting(*pool, 2);
  channel->Cancel(arrow::Status::IOError("writer 3 of shuffle 's1' failed: disk on fire"));
  arrow::Status status = waiting.get();
  ASSERT_RAISES_WITH(Cancelled, "cancelled while waiting for 1 network buffer segments", status);
  EXPECT_NE(status.message().find("disk on fire"), std::string::npos) << status.ToString();
  const auto* detail = ShuffleErrorDetail::FromStatus(status);
  ASSERT_NE(detail, nullptr);
  EXPECT_EQ(detail->context().shuffle_id, "s1");
  // Later calls fail too, waiting or not; granted reservations stay valid.
  ASSERT_RAISES_WITH(Cancelled, "channel was cancelled", channel->TryReserve(1).status());
  ASSERT_RAISES_WITH(Cancelled, "disk on fire", channel->Reserve(1).status());
  EXPECT_EQ(held.segments(), 6);
  // The other channel still waits, and gets its segments when they come back.
  AwaitWaiting(*pool, 1);
  held.Release();
  ASSERT_OK_AND_ASSIGN(auto granted, other_waiting.get());
  EXPECT_EQ(granted.segments(), 1);
}

TEST(NetworkBufferPoolTest, ManyProducersNeverHoldMoreThanThePool) {
  NetworkBufferPoolOptions o = SmallPool();
  o.total_segments = 10;
  o.exclusive_segments_per_channel = 1;
  o.floating_segments_per_shuffle = 3;
  ASSERT_OK_AND_ASSIGN(auto pool, NetworkBufferPool::Make(o, 0));
  std::atomic<int64_t> in_use{0};
  std::atomic<int64_t> max_in_use{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      auto channel = pool->RegisterChannel("s" + std::to_string(t % 2)).ValueOrDie();
      for (int i = 0; i < 300; ++i) {
        auto r = channel->Reserve(1 + (i % 3)).ValueOrDie();
        int64_t now = in_use.fetch_add(r.segments()) + r.segments();
        int64_t seen = max_in_use.load();
        while (now > seen && !max_in_use.compare_exchange_weak(seen, now)) {
        }
        std::this_thread::yield();
        in_use.fetch_sub(r.segments());
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_LE(max_in_use.load(), 10);
  auto s = pool->stats();
  EXPECT_EQ(s.exclusive_in_use + s.floating_in_use, 0);
  EXPECT_EQ(s.set_aside_segments, 0);
}

// A producer that must not wait: TryReserve comes back empty and arms the channel's callback,
// which runs once returned segments could grant that request (not for a return that cannot),
// on the returning thread; the next TryReserve then gets them.
TEST(NetworkBufferPoolTest, TryReserveArmsACallbackForWhenSegmentsReturn) {
  ASSERT_OK_AND_ASSIGN(auto pool, NetworkBufferPool::Make(SmallPool(), 0));
  ASSERT_OK_AND_ASSIGN(auto channel, pool->RegisterChannel("s"));
  auto calls = std::make_shared<std::atomic<int>>(0);
  channel->SetOnAvailable([calls] { calls->fetch_add(1); });
  // 2 exclusive + 4 floating: all of it.
  ASSERT_OK_AND_ASSIGN(auto big, channel->TryReserve(5));
  ASSERT_OK_AND_ASSIGN(auto small, channel->TryReserve(1));
  EXPECT_EQ(big.segments() + small.segments(), 6);
  ASSERT_OK_AND_ASSIGN(auto none, channel->TryReserve(3));
  EXPECT_TRUE(none.empty());
  EXPECT_EQ(calls->load(), 0);
  EXPECT_EQ(pool->stats().waiting_producers, 0) << "a TryReserve never waits";
  small.Release();  // 1 segment back: not enough for 3
  EXPECT_EQ(calls->load(), 0);
  big.Release();
  EXPECT_EQ(calls->load(), 1);
  // Called once per arming: further returns do not call it again.
  ASSERT_OK_AND_ASSIGN(auto got, channel->TryReserve(3));
  EXPECT_EQ(got.segments(), 3);
  got.Release();
  EXPECT_EQ(calls->load(), 1);
}

TEST(NetworkBufferPoolTest, CancelCallsTheCallbackOfAnArmedChannel) {
  ASSERT_OK_AND_ASSIGN(auto pool, NetworkBufferPool::Make(SmallPool(), 0));
  ASSERT_OK_AND_ASSIGN(auto channel, pool->RegisterChannel("s"));
  auto calls = std::make_shared<std::atomic<int>>(0);
  channel->SetOnAvailable([calls] { calls->fetch_add(1); });
  ASSERT_OK_AND_ASSIGN(auto all, channel->TryReserve(6));
  ASSERT_OK_AND_ASSIGN(auto none, channel->TryReserve(1));
  EXPECT_TRUE(none.empty());
  std::thread canceller([&] { channel->Cancel(arrow::Status::Cancelled("job cancelled")); });
  canceller.join();
  EXPECT_EQ(calls->load(), 1);
  ASSERT_RAISES_WITH(Cancelled, "job cancelled", channel->TryReserve(1).status());
  all.Release();
  EXPECT_EQ(calls->load(), 1) << "a cancelled channel is no longer armed";
}

// Returned segments wake the producers whose requests now fit, across channels, and only
// those; a channel unregistering frees its set-aside segments, which wakes them too.
TEST(NetworkBufferPoolTest, ReturnsWakeOnlyChannelsWhoseRequestFits) {
  NetworkBufferPoolOptions o = SmallPool();
  o.total_segments = 6;
  ASSERT_OK_AND_ASSIGN(auto pool, NetworkBufferPool::Make(o, 0));
  ASSERT_OK_AND_ASSIGN(auto a, pool->RegisterChannel("s"));
  ASSERT_OK_AND_ASSIGN(auto b, pool->RegisterChannel("s"));
  auto a_calls = std::make_shared<std::atomic<int>>(0);
  auto b_calls = std::make_shared<std::atomic<int>>(0);
  a->SetOnAvailable([a_calls] { a_calls->fetch_add(1); });
  b->SetOnAvailable([b_calls] { b_calls->fetch_add(1); });
  // 4 set aside (2 + 2), 2 shared left: a takes its 2 exclusive and both shared ones.
  ASSERT_OK_AND_ASSIGN(auto a_all, a->TryReserve(4));
  EXPECT_EQ(a_all.segments(), 4);
  ASSERT_OK_AND_ASSIGN(auto b_none, b->TryReserve(3));  // b's 2 exclusive + 1 floating
  EXPECT_TRUE(b_none.empty());
  ASSERT_OK_AND_ASSIGN(auto a_none, a->TryReserve(5));  // can never fit beside a_all
  EXPECT_TRUE(a_none.empty());
  a_all.Release();  // b's 3 fit now (2 exclusive + 1 of the 2 free); a's 5 do not (2 + 2)
  EXPECT_EQ(b_calls->load(), 1);
  EXPECT_EQ(a_calls->load(), 0) << "a's 5 segments exceed its 2 exclusive + 2 free";
  b.reset();  // b's 2 set-aside segments return: a's 5 fit (2 exclusive + 3 of 4 free)
  EXPECT_EQ(a_calls->load(), 1);
  ASSERT_OK_AND_ASSIGN(auto a_again, a->TryReserve(5));
  EXPECT_EQ(a_again.segments(), 5);
}

}  // namespace
}  // namespace sabot
