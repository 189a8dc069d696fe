// EventHub: server-sent event topics, one per video job or streaming session.
//
// Each topic keeps its history (the last `history_limit` events), so a client
// that subscribes late still receives them in order, then follows live ones; a closed topic replays its history and ends the stream. Publishing
// never blocks on a client (ResponseChannel queues and drops laggards).
// Thread-safe (one mutex): the inference thread publishes, HTTP threads
// subscribe.
#pragma once

#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "service/http_server.h"

namespace ltx::service {

class EventHub {
 public:
  // The history stays below ResponseChannel::kMaxQueuedEvents, so a replay always fits.
  explicit EventHub(size_t history_limit = 1024) : history_limit_(history_limit) {}

  void open(const std::string& topic);
  // `data_json` is one line of JSON (the SSE data field).
  void publish(const std::string& topic, const std::string& event, const std::string& data_json);
  // No more events: live subscribers' streams end.
  void close(const std::string& topic);
  void erase(const std::string& topic);
  // A channel that replays the topic and follows it; nullptr for an unknown topic.
  std::shared_ptr<ResponseChannel> subscribe(const std::string& topic);
  // A comment frame to every live subscriber: finds clients that went away.
  void ping();
  void close_all();

  // One SSE frame.
  static std::string frame(int64_t id, const std::string& event, const std::string& data_json);

 private:
  struct Topic {
    std::deque<std::string> history;
    int64_t next_id = 1;
    bool closed = false;
    std::vector<std::shared_ptr<ResponseChannel>> subscribers;
  };
  const size_t history_limit_;
  std::mutex mu_;
  std::map<std::string, Topic> topics_;
};

}  // namespace ltx::service
