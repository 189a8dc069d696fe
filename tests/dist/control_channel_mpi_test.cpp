#include "dist/control_channel.h"

#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <set>
#include <thread>

#include "common/check.h"
#include "dist/world.h"

namespace ltx::dist {
namespace {

World& world() {
  static World w(nullptr, nullptr);
  return w;
}

// What every rank's handler does: count commands, track requests, and fail in
// the ways a real engine does (unknown request everywhere; a rank-local failure).
struct FakeEngine {
  int handled = 0;
  uint64_t ping_sum = 0;
  std::set<std::string> requests;

  Status handle(const Command& cmd) {
    ++handled;
    if (auto* p = std::get_if<PingCommand>(&cmd)) {
      ping_sum += p->token;
      if (p->token == 13 && world().rank() == world().size() - 1) {
        return resource_exhausted_error("out of KV memory");
      }
      if (p->token == 66) throw std::runtime_error("handler blew up");
      if (p->token == 21) {  // rank 0 is slow, the last rank fails at once
        if (world().rank() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(300));
        if (world().rank() == world().size() - 1) return internal_error("failed early");
      }
      return Status();
    }
    if (auto* b = std::get_if<BeginRequestCommand>(&cmd)) {
      if (b->params.empty()) return invalid_argument_error("a request needs its parameters");
      requests.insert(b->request_id);
      return Status();
    }
    if (auto* s = std::get_if<StepCommand>(&cmd)) {
      if (!requests.count(s->request_id)) return not_found_error("unknown request '" + s->request_id + "'");
      return Status();
    }
    if (auto* c = std::get_if<CancelCommand>(&cmd)) {
      requests.erase(c->request_id);
      return Status();
    }
    return Status();
  }
};

TEST(ControlChannel, MixOfValidAndInvalidCommandsKeepsRanksInStep) {
  ControlChannel channel(world().comm());
  FakeEngine engine;
  auto handler = [&engine](const Command& c) { return engine.handle(c); };
  const int n = channel.size();

  if (channel.rank() == 0) {
    auto expect_ok = [&](const Command& c) {
      auto o = channel.execute(c, handler);
      EXPECT_TRUE(o.status.ok()) << o.status;
      EXPECT_EQ(o.per_rank.size(), static_cast<size_t>(n));
    };
    expect_ok(PingCommand{1});
    expect_ok(BeginRequestCommand{"vid_1", "", "params"});
    expect_ok(StepCommand{"vid_1", 0});

    // Handler errors on every rank: rank 0's own error, code preserved.
    auto unknown = channel.execute(StepCommand{"vid_404", 0}, handler);
    EXPECT_EQ(unknown.status.code(), StatusCode::kNotFound);
    for (const auto& s : unknown.per_rank) EXPECT_EQ(s.code(), StatusCode::kNotFound);

    // An error on the last rank only: reported with that rank's number.
    auto local = channel.execute(PingCommand{13}, handler);
    EXPECT_EQ(local.status.code(), StatusCode::kResourceExhausted);
    EXPECT_NE(local.status.message().find("rank " + std::to_string(n - 1) + ": out of KV memory"),
              std::string::npos)
        << local.status;

    // A rank that failed early waits for a slower peer (within the fault
    // timeout) and reports as usual; the group does not abort.
    auto early = channel.execute(PingCommand{21}, handler);
    if (n > 1) {
      EXPECT_NE(early.status.message().find("failed early"), std::string::npos) << early.status;
    }

    // A throwing handler becomes a Status, not a dead rank.
    auto thrown = channel.execute(PingCommand{66}, handler);
    EXPECT_EQ(thrown.status.code(), StatusCode::kInternal);
    EXPECT_NE(thrown.status.message().find("handler blew up"), std::string::npos);

    // Malformed bytes: every rank refuses them identically; the handler never runs.
    std::string bad = encode_command(PingCommand{5}, 99);
    bad[6] = 77;  // unknown type
    auto unknown_type = channel.execute_raw(bad, handler);
    EXPECT_EQ(unknown_type.status.code(), StatusCode::kInvalidArgument);
    EXPECT_NE(unknown_type.status.message().find("unknown type 77"), std::string::npos);
    for (const auto& s : unknown_type.per_rank) EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
    auto garbage = channel.execute_raw("definitely not a command", handler);
    EXPECT_FALSE(garbage.status.ok());
    auto empty = channel.execute_raw("", handler);
    EXPECT_FALSE(empty.status.ok());
    std::string old = encode_command(PingCommand{5}, 100);
    old[4] = 0;  // version 0
    EXPECT_NE(channel.execute_raw(old, handler).status.message().find("protocol version 0"),
              std::string::npos);
    // Too large: refused on rank 0 before any collective.
    auto too_big = channel.execute_raw(std::string(kMaxCommandBytes + 1, 'x'), handler);
    EXPECT_EQ(too_big.status.code(), StatusCode::kInvalidArgument);
    EXPECT_TRUE(too_big.per_rank.empty());

    // Still in step afterwards.
    expect_ok(CancelCommand{"vid_1"});
    EXPECT_EQ(channel.execute(StepCommand{"vid_1", 1}, handler).status.code(), StatusCode::kNotFound);
    expect_ok(PingCommand{100});
    expect_ok(ShutdownCommand{});
  } else {
    Status served = channel.serve(handler);
    EXPECT_TRUE(served.ok()) << served;
  }

  // Every rank ran the handler for exactly the same valid commands.
  int counts[2] = {engine.handled, static_cast<int>(engine.ping_sum)};
  std::vector<int> all(2 * n);
  MPI_Allgather(counts, 2, MPI_INT, all.data(), 2, MPI_INT, world().comm());
  for (int r = 0; r < n; ++r) {
    EXPECT_EQ(all[2 * r], all[0]) << "rank " << r << " handled a different number of commands";
    EXPECT_EQ(all[2 * r + 1], all[1]) << "rank " << r;
  }
  EXPECT_EQ(engine.handled, 11);  // valid commands only: malformed ones never reach the handler
  EXPECT_EQ(engine.ping_sum, 1u + 13 + 21 + 66 + 100);
}

TEST(ControlChannel, OnlyRankZeroSends) {
  ControlChannel channel(world().comm());
  auto handler = [](const Command&) { return Status(); };
  if (channel.rank() != 0) {
    EXPECT_THROW(channel.execute(PingCommand{}, handler), Error);
  } else {
    EXPECT_THROW((void)channel.serve(handler), Error);
  }
}

}  // namespace
}  // namespace ltx::dist
