// The wire format of the control plane: little-endian integers, IEEE
// doubles, flags as u16 0/1, strings as u32 length + bytes. WireWriter builds
// bytes; WireReader checks every length and never reads past its end, so a
// truncated or corrupt buffer is a false return, identical on every rank.
// dist/command.cpp frames commands with it; the engine's request types write
// their fields with it (dist/ knows no field of theirs). Plain values; any
// thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace ltx::dist {

// Largest string field (a prompt, an id, a nested encoded value).
constexpr uint32_t kMaxWireString = 1u << 20;

class WireWriter {
 public:
  void u16(uint16_t v) { uint(v, 2); }
  void u32(uint32_t v) { uint(v, 4); }
  void u64(uint64_t v) { uint(v, 8); }
  void i64(int64_t v) { uint(static_cast<uint64_t>(v), 8); }
  void f64(double v);
  void flag(bool v) { u16(v ? 1 : 0); }
  // Throws ltx::Error (a caller error) above kMaxWireString bytes.
  void str(const std::string& s);
  std::string& bytes() { return out_; }

 private:
  void uint(uint64_t v, int n) {
    for (int i = 0; i < n; ++i) out_.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  }
  std::string out_;
};

class WireReader {
 public:
  // Reads b[pos, end).
  WireReader(const std::string& b, size_t pos, size_t end) : b_(b), pos_(pos), end_(end) {}
  explicit WireReader(const std::string& b) : WireReader(b, 0, b.size()) {}
  bool u16(uint16_t* v) { return uint(v, 2); }
  bool u32(uint32_t* v) { return uint(v, 4); }
  bool u64(uint64_t* v) { return uint(v, 8); }
  bool i64(int64_t* v);
  bool f64(double* v);
  bool flag(bool* v);  // u16 0 or 1; anything else is malformed
  bool str(std::string* s);
  bool done() const { return pos_ == end_; }

 private:
  template <typename T>
  bool uint(T* v, int n) {
    if (end_ - pos_ < static_cast<size_t>(n)) return false;
    uint64_t x = 0;
    for (int i = n - 1; i >= 0; --i) x = (x << 8) | static_cast<uint8_t>(b_[pos_ + i]);
    pos_ += n;
    *v = static_cast<T>(x);
    return true;
  }
  const std::string& b_;
  size_t pos_;
  size_t end_;
};

}  // namespace ltx::dist
