#include "dist/wire.h"

#include <cstring>

#include "common/check.h"

namespace ltx::dist {

void WireWriter::f64(double v) {
  uint64_t bits;
  std::memcpy(&bits, &v, sizeof(bits));
  u64(bits);
}

void WireWriter::str(const std::string& s) {
  LTX_CHECK(s.size() <= kMaxWireString, "wire string field of ", s.size(), " bytes exceeds ", kMaxWireString);
  u32(static_cast<uint32_t>(s.size()));
  out_ += s;
}

bool WireReader::i64(int64_t* v) {
  uint64_t u;
  if (!uint(&u, 8)) return false;
  *v = static_cast<int64_t>(u);
  return true;
}

bool WireReader::f64(double* v) {
  uint64_t bits;
  if (!u64(&bits)) return false;
  std::memcpy(v, &bits, sizeof(bits));
  return true;
}

bool WireReader::flag(bool* out) {
  uint16_t v = 0;
  if (!u16(&v) || v > 1) return false;
  *out = v == 1;
  return true;
}

bool WireReader::str(std::string* s) {
  uint32_t n;
  if (!u32(&n) || n > kMaxWireString || n > end_ - pos_) return false;
  s->assign(b_, pos_, n);
  pos_ += n;
  return true;
}

}  // namespace ltx::dist
