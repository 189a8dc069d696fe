// FairQueue: work items from many owners (a video job, a streaming session),
// served round-robin so one owner's backlog never starves another: the owner
// served longest ago goes next, and within one owner items keep their order.
//
// Not thread-safe: ApiService guards it with its mutex. Header-only.
#pragma once

#include <algorithm>
#include <cstddef>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace ltx::service {

template <typename T>
class FairQueue {
 public:
  void push(const std::string& owner, T item) {
    auto& q = items_[owner];
    if (q.empty()) order_.push_back(owner);
    q.push_back(std::move(item));
    ++size_;
  }

  // Puts `item` first in its owner's lane (a paused job resuming before the
  // lane's later jobs); a lane that was empty joins the rotation last.
  void push_front(const std::string& owner, T item) {
    auto& q = items_[owner];
    if (q.empty()) order_.push_back(owner);
    q.push_front(std::move(item));
    ++size_;
  }

  // Whether a lane other than `owner` holds an item.
  bool has_other_than(const std::string& owner) const {
    for (const auto& o : order_) {
      if (o != owner) return true;
    }
    return false;
  }

  // The next item in round-robin order, or nullopt when empty.
  std::optional<T> pop() {
    if (order_.empty()) return std::nullopt;
    const std::string owner = order_.front();
    order_.pop_front();
    auto it = items_.find(owner);
    T item = std::move(it->second.front());
    it->second.pop_front();
    --size_;
    if (it->second.empty()) {
      items_.erase(it);
    } else {
      order_.push_back(owner);
    }
    return item;
  }

  // Removes (and returns, in queue order per owner) every item `pred` accepts.
  template <typename Pred>
  std::vector<T> remove_if(Pred pred) {
    std::vector<T> out;
    for (auto it = items_.begin(); it != items_.end();) {
      auto& q = it->second;
      for (auto qi = q.begin(); qi != q.end();) {
        if (pred(*qi)) {
          out.push_back(std::move(*qi));
          qi = q.erase(qi);
          --size_;
        } else {
          ++qi;
        }
      }
      if (q.empty()) {
        order_.erase(std::find(order_.begin(), order_.end(), it->first));
        it = items_.erase(it);
      } else {
        ++it;
      }
    }
    return out;
  }

  // How many items pop() returns before the first one `pred` accepts; nullopt
  // when none is queued.
  template <typename Pred>
  std::optional<size_t> position(Pred pred) const {
    for (size_t p = 0; p < order_.size(); ++p) {
      const auto& q = items_.at(order_[p]);
      for (size_t k = 0; k < q.size(); ++k) {
        if (!pred(q[k])) continue;
        // Round k serves the k-th item of every owner still holding one.
        size_t before = 0;
        for (size_t o = 0; o < order_.size(); ++o) {
          const size_t len = items_.at(order_[o]).size();
          before += std::min(len, k) + (o < p && len > k ? 1 : 0);
        }
        return before;
      }
    }
    return std::nullopt;
  }

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }

 private:
  std::deque<std::string> order_;  // owners with queued items, next to serve first
  std::map<std::string, std::deque<T>> items_;
  size_t size_ = 0;
};

}  // namespace ltx::service
