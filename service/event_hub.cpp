#include "service/event_hub.h"

#include <algorithm>

namespace ltx::service {

std::string EventHub::frame(int64_t id, const std::string& event, const std::string& data_json) {
  return "id: " + std::to_string(id) + "\nevent: " + event + "\ndata: " + data_json + "\n\n";
}

void EventHub::open(const std::string& topic) {
  std::lock_guard<std::mutex> lock(mu_);
  topics_.emplace(topic, Topic{});
}

void EventHub::publish(const std::string& topic, const std::string& event, const std::string& data_json) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = topics_.find(topic);
  if (it == topics_.end() || it->second.closed) return;
  Topic& t = it->second;
  std::string f = frame(t.next_id++, event, data_json);
  t.history.push_back(f);
  if (t.history.size() > history_limit_) t.history.pop_front();
  auto& subs = t.subscribers;
  subs.erase(std::remove_if(subs.begin(), subs.end(), [](const auto& c) { return c->closed(); }), subs.end());
  for (const auto& c : subs) c->send_event(f);
}

void EventHub::close(const std::string& topic) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = topics_.find(topic);
  if (it == topics_.end()) return;
  it->second.closed = true;
  for (const auto& c : it->second.subscribers) c->end();
  it->second.subscribers.clear();
}

void EventHub::erase(const std::string& topic) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = topics_.find(topic);
  if (it == topics_.end()) return;
  for (const auto& c : it->second.subscribers) c->end();
  topics_.erase(it);
}

std::shared_ptr<ResponseChannel> EventHub::subscribe(const std::string& topic) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = topics_.find(topic);
  if (it == topics_.end()) return nullptr;
  auto c = std::make_shared<ResponseChannel>();
  c->open_events();
  for (const auto& f : it->second.history) c->send_event(f);
  if (it->second.closed) {
    c->end();
  } else {
    it->second.subscribers.push_back(c);
  }
  return c;
}

void EventHub::ping() {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [name, t] : topics_) {
    auto& subs = t.subscribers;
    subs.erase(std::remove_if(subs.begin(), subs.end(), [](const auto& c) { return c->closed(); }), subs.end());
    for (const auto& c : subs) c->send_event(": keep-alive\n\n");
  }
}

void EventHub::close_all() {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [name, t] : topics_) {
    t.closed = true;
    for (const auto& c : t.subscribers) c->end();
    t.subscribers.clear();
  }
}

}  // namespace ltx::service
