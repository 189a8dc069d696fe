#include "pipeline/io/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>

#include "common/check.h"
#include "common/logging.h"
#include "common/torch_compat.h"

namespace ltx::pipeline {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

struct DtypeInfo {
  SafetensorsDtype dtype;
  const char* name;
  size_t size;
};

constexpr DtypeInfo kDtypes[] = {
    {SafetensorsDtype::kBool, "BOOL", 1},     {SafetensorsDtype::kU8, "U8", 1},
    {SafetensorsDtype::kI8, "I8", 1},         {SafetensorsDtype::kI16, "I16", 2},
    {SafetensorsDtype::kU16, "U16", 2},       {SafetensorsDtype::kF16, "F16", 2},
    {SafetensorsDtype::kBF16, "BF16", 2},     {SafetensorsDtype::kI32, "I32", 4},
    {SafetensorsDtype::kU32, "U32", 4},       {SafetensorsDtype::kF32, "F32", 4},
    {SafetensorsDtype::kF64, "F64", 8},       {SafetensorsDtype::kI64, "I64", 8},
    {SafetensorsDtype::kU64, "U64", 8},       {SafetensorsDtype::kF8E4M3, "F8_E4M3", 1},
    {SafetensorsDtype::kF8E5M2, "F8_E5M2", 1},
};

const DtypeInfo& info_of(SafetensorsDtype dtype) {
  for (const auto& d : kDtypes) {
    if (d.dtype == dtype) return d;
  }
  LTX_INTERNAL_ASSERT(false, "unhandled SafetensorsDtype ", static_cast<int>(dtype));
  return kDtypes[0];
}

// Largest nesting of arrays/objects in the header (outside strings). A valid
// header needs 3: root object, tensor object, shape array. Checking this before
// parsing bounds the parser's work on a hostile header.
int max_json_depth(const char* p, size_t n) {
  int depth = 0, max_depth = 0;
  bool in_string = false, escaped = false;
  for (size_t i = 0; i < n; ++i) {
    char c = p[i];
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      max_depth = std::max(max_depth, ++depth);
    } else if (c == '}' || c == ']') {
      --depth;
    }
  }
  return max_depth;
}

bool mul_overflows(uint64_t a, uint64_t b, uint64_t* out) {
  if (a != 0 && b > std::numeric_limits<uint64_t>::max() / a) return true;
  *out = a * b;
  return false;
}

std::string errno_text() { return std::strerror(errno); }

}  // namespace

const char* safetensors_dtype_name(SafetensorsDtype dtype) { return info_of(dtype).name; }
size_t safetensors_dtype_size(SafetensorsDtype dtype) { return info_of(dtype).size; }

std::optional<SafetensorsDtype> parse_safetensors_dtype(const std::string& name) {
  for (const auto& d : kDtypes) {
    if (name == d.name) return d.dtype;
  }
  return std::nullopt;
}

std::optional<at::ScalarType> to_scalar_type(SafetensorsDtype dtype) {
  switch (dtype) {
    case SafetensorsDtype::kBool: return at::kBool;
    case SafetensorsDtype::kU8: return at::kByte;
    case SafetensorsDtype::kI8: return at::kChar;
    case SafetensorsDtype::kI16: return at::kShort;
    case SafetensorsDtype::kF16: return at::kHalf;
    case SafetensorsDtype::kBF16: return at::kBFloat16;
    case SafetensorsDtype::kI32: return at::kInt;
    case SafetensorsDtype::kF32: return at::kFloat;
    case SafetensorsDtype::kF64: return at::kDouble;
    case SafetensorsDtype::kI64: return at::kLong;
#if LTX_TORCH_VERSION_AT_LEAST(2, 3)
    case SafetensorsDtype::kU16: return at::kUInt16;
    case SafetensorsDtype::kU32: return at::kUInt32;
    case SafetensorsDtype::kU64: return at::kUInt64;
#endif
#if LTX_TORCH_VERSION_AT_LEAST(2, 1)
    case SafetensorsDtype::kF8E4M3: return at::kFloat8_e4m3fn;
    case SafetensorsDtype::kF8E5M2: return at::kFloat8_e5m2;
#endif
    default: return std::nullopt;
  }
}

std::optional<SafetensorsDtype> from_scalar_type(at::ScalarType type) {
  for (const auto& d : kDtypes) {
    auto st = to_scalar_type(d.dtype);
    if (st.has_value() && *st == type) return d.dtype;
  }
  return std::nullopt;
}

int64_t SafetensorsEntry::numel() const {
  int64_t n = 1;
  for (int64_t s : shape) n *= s;
  return n;
}

// Either a read-only-to-disk private mapping of a file, or owned bytes.
struct SafetensorsFile::Storage {
  void* map = nullptr;
  size_t map_size = 0;
  std::string bytes;

  ~Storage() {
    if (map != nullptr) munmap(map, map_size);
  }
  const uint8_t* data() const {
    return map != nullptr ? static_cast<const uint8_t*>(map)
                          : reinterpret_cast<const uint8_t*>(bytes.data());
  }
  size_t size() const { return map != nullptr ? map_size : bytes.size(); }
};

Result<std::shared_ptr<const SafetensorsFile>> SafetensorsFile::open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return errno == ENOENT ? not_found_error(path + ": no such file")
                           : invalid_argument_error(path + ": cannot open: " + errno_text());
  }
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    std::string why = errno_text();
    ::close(fd);
    return invalid_argument_error(path + ": cannot stat: " + why);
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return invalid_argument_error(path + ": not a regular file");
  }
  auto storage = std::make_shared<Storage>();
  if (st.st_size > 0) {
    // Private + writable: views are copy-on-write, so a caller's in-place op
    // never reaches the file and never faults on a read-only page.
    void* p = mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ | PROT_WRITE, MAP_PRIVATE,
                   fd, 0);
    if (p == MAP_FAILED) {
      std::string why = errno_text();
      ::close(fd);
      return invalid_argument_error(path + ": mmap failed: " + why);
    }
    storage->map = p;
    storage->map_size = static_cast<size_t>(st.st_size);
  }
  ::close(fd);
  return parse(std::move(storage), path);
}

Result<std::shared_ptr<const SafetensorsFile>> SafetensorsFile::from_bytes(
    std::string bytes, const std::string& label) {
  auto storage = std::make_shared<Storage>();
  storage->bytes = std::move(bytes);
  return parse(std::move(storage), label);
}

Result<std::shared_ptr<const SafetensorsFile>> SafetensorsFile::parse(
    std::shared_ptr<Storage> storage, const std::string& label) {
  auto fail = [&label](const std::string& what) { return invalid_argument_error(label + ": " + what); };
  const size_t total = storage->size();
  if (total < 8) {
    return fail("truncated: " + std::to_string(total) +
                " bytes, a safetensors file needs at least the 8-byte header length");
  }
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | storage->data()[i];
  if (header_len > kMaxHeaderBytes) {
    return fail("header length " + std::to_string(header_len) + " exceeds the limit of " +
                std::to_string(kMaxHeaderBytes) + " bytes");
  }
  if (header_len > total - 8) {
    return fail("header length " + std::to_string(header_len) + " runs past the end of the file (" +
                std::to_string(total) + " bytes)");
  }
  if (header_len < 2) return fail("header of " + std::to_string(header_len) + " bytes is too short");
  const char* header = reinterpret_cast<const char*>(storage->data() + 8);
  if (max_json_depth(header, header_len) > 3) {
    return fail("header JSON is nested deeper than a safetensors header can be");
  }
  json root = json::parse(header, header + header_len, nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded()) return fail("header is not well-formed JSON");
  if (!root.is_object()) return fail("header is not a JSON object");

  std::shared_ptr<SafetensorsFile> file(new SafetensorsFile());
  file->label_ = label;
  file->data_ = storage->data() + 8 + header_len;
  file->data_size_ = total - 8 - header_len;

  for (auto it = root.begin(); it != root.end(); ++it) {
    const std::string& name = it.key();
    const json& v = it.value();
    if (name == "__metadata__") {
      if (!v.is_object()) return fail("__metadata__ is not an object");
      for (auto m = v.begin(); m != v.end(); ++m) {
        if (!m.value().is_string()) {
          return fail("__metadata__ value for '" + m.key() + "' is not a string");
        }
        file->metadata_[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    auto bad = [&](const std::string& what) { return fail("tensor '" + name + "': " + what); };
    if (!v.is_object()) return bad("entry is not an object");
    auto dt = v.find("dtype");
    auto sh = v.find("shape");
    auto off = v.find("data_offsets");
    if (dt == v.end() || !dt->is_string()) return bad("missing or non-string dtype");
    if (sh == v.end() || !sh->is_array()) return bad("missing or non-array shape");
    if (off == v.end() || !off->is_array() || off->size() != 2) {
      return bad("data_offsets must be an array of two integers");
    }
    SafetensorsEntry e;
    e.name = name;
    auto dtype = parse_safetensors_dtype(dt->get<std::string>());
    if (!dtype) return bad("unknown dtype '" + dt->get<std::string>() + "'");
    e.dtype = *dtype;
    if (sh->size() > 64) return bad("shape has " + std::to_string(sh->size()) + " dimensions");
    uint64_t numel = 1;
    for (const json& d : *sh) {
      if (!d.is_number_unsigned()) return bad("shape holds a value that is not a non-negative integer");
      uint64_t dim = d.get<uint64_t>();
      if (dim > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) ||
          mul_overflows(numel, dim, &numel)) {
        return bad("shape overflows");
      }
      e.shape.push_back(static_cast<int64_t>(dim));
    }
    for (const json& o : *off) {
      if (!o.is_number_unsigned()) return bad("data_offsets holds a value that is not a non-negative integer");
    }
    e.begin = (*off)[0].get<uint64_t>();
    e.end = (*off)[1].get<uint64_t>();
    if (e.begin > e.end) {
      return bad("data_offsets [" + std::to_string(e.begin) + ", " + std::to_string(e.end) +
                 "] are reversed");
    }
    if (e.end > file->data_size_) {
      return bad("data_offsets [" + std::to_string(e.begin) + ", " + std::to_string(e.end) +
                 "] fall outside the data section of " + std::to_string(file->data_size_) +
                 " bytes");
    }
    uint64_t nbytes = 0;
    if (mul_overflows(numel, safetensors_dtype_size(e.dtype), &nbytes) || nbytes != e.end - e.begin) {
      return bad("shape and dtype " + std::string(safetensors_dtype_name(e.dtype)) + " need " +
                 std::to_string(nbytes) + " bytes but data_offsets span " +
                 std::to_string(e.end - e.begin));
    }
    file->entries_.emplace(name, std::move(e));
  }

  // Spans must not overlap: sort non-empty spans by start and compare neighbours.
  std::vector<const SafetensorsEntry*> spans;
  for (const auto& kv : file->entries_) {
    if (kv.second.end > kv.second.begin) spans.push_back(&kv.second);
  }
  std::sort(spans.begin(), spans.end(),
            [](const SafetensorsEntry* a, const SafetensorsEntry* b) { return a->begin < b->begin; });
  for (size_t i = 1; i < spans.size(); ++i) {
    if (spans[i]->begin < spans[i - 1]->end) {
      return fail("tensors '" + spans[i - 1]->name + "' and '" + spans[i]->name +
                  "' overlap in the data section");
    }
  }
  for (const auto& kv : file->entries_) file->names_.push_back(kv.first);
  file->storage_ = std::move(storage);
  return std::shared_ptr<const SafetensorsFile>(std::move(file));
}

const SafetensorsEntry* SafetensorsFile::find(const std::string& name) const {
  auto it = entries_.find(name);
  return it == entries_.end() ? nullptr : &it->second;
}

Result<at::Tensor> SafetensorsFile::tensor(const std::string& name) const {
  const SafetensorsEntry* e = find(name);
  if (e == nullptr) return not_found_error(label_ + ": no tensor named '" + name + "'");
  auto scalar_type = to_scalar_type(e->dtype);
  if (!scalar_type) {
    return unimplemented_error(label_ + ": tensor '" + name + "' has dtype " +
                               safetensors_dtype_name(e->dtype) +
                               ", which this libtorch cannot represent");
  }
  const uint8_t* p = data_ + e->begin;
  const size_t nbytes = e->end - e->begin;
  if (e->dtype == SafetensorsDtype::kBool) {
    for (size_t i = 0; i < nbytes; ++i) {
      if (p[i] > 1) {
        return invalid_argument_error(label_ + ": tensor '" + name + "' (BOOL) holds byte " +
                                      std::to_string(p[i]) + ", not 0 or 1");
      }
    }
  }
  auto options = at::TensorOptions().dtype(*scalar_type).device(at::kCPU);
  const size_t align = safetensors_dtype_size(e->dtype);
  if (reinterpret_cast<uintptr_t>(p) % align != 0) {
    at::Tensor t = at::empty(e->shape, options);
    if (nbytes > 0) std::memcpy(t.data_ptr(), p, nbytes);
    return t;
  }
  std::shared_ptr<Storage> keep = storage_;
  return at::from_blob(const_cast<uint8_t*>(p), e->shape, [keep](void*) mutable { keep.reset(); },
                       options);
}

namespace {

bool is_safe_relative_name(const std::string& name) {
  if (name.empty()) return false;
  fs::path p(name);
  if (p.is_absolute()) return false;
  for (const auto& part : p) {
    if (part == ".." || part == ".") return false;
  }
  return true;
}

Result<std::string> read_small_file(const std::string& path, size_t limit) {
  std::error_code ec;
  auto size = fs::file_size(path, ec);
  if (ec) return not_found_error(path + ": " + ec.message());
  if (size > limit) {
    return invalid_argument_error(path + ": " + std::to_string(size) + " bytes, more than the " +
                                  std::to_string(limit) + " allowed");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return invalid_argument_error(path + ": cannot open");
  std::string text(size, '\0');
  in.read(text.data(), static_cast<std::streamsize>(size));
  if (!in) return invalid_argument_error(path + ": read failed");
  return text;
}

}  // namespace

Result<SafetensorsCheckpoint> SafetensorsCheckpoint::open(const std::string& path) {
  SafetensorsCheckpoint ckpt;
  ckpt.source_ = path;
  std::error_code ec;
  std::vector<std::string> shard_paths;
  std::string index_path;
  auto ends_with = [](const std::string& s, const std::string& suffix) {
    return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
  };

  if (fs::is_directory(path, ec)) {
    std::vector<std::string> indexes, files;
    for (const auto& de : fs::directory_iterator(path, ec)) {
      std::string n = de.path().filename().string();
      if (ends_with(n, ".safetensors.index.json")) indexes.push_back(de.path().string());
      if (ends_with(n, ".safetensors") && de.is_regular_file()) files.push_back(de.path().string());
    }
    if (ec) return invalid_argument_error(path + ": cannot list folder: " + ec.message());
    std::sort(indexes.begin(), indexes.end());
    std::sort(files.begin(), files.end());
    if (indexes.size() > 1) {
      return invalid_argument_error(path + ": holds " + std::to_string(indexes.size()) +
                                    " *.safetensors.index.json files; name the one to use");
    }
    if (indexes.size() == 1) {
      index_path = indexes[0];
    } else if (files.empty()) {
      return not_found_error(path + ": no *.safetensors file in this folder");
    } else {
      shard_paths = files;
    }
  } else if (ends_with(path, ".index.json")) {
    index_path = path;
  } else {
    shard_paths.push_back(path);
  }

  if (!index_path.empty()) {
    LTX_ASSIGN_OR_RETURN(std::string text, read_small_file(index_path, 64u << 20));
    json index = json::parse(text, nullptr, false);
    if (index.is_discarded() || !index.is_object()) {
      return invalid_argument_error(index_path + ": not a JSON object");
    }
    auto wm = index.find("weight_map");
    if (wm == index.end() || !wm->is_object()) {
      return invalid_argument_error(index_path + ": missing object 'weight_map'");
    }
    const fs::path dir = fs::path(index_path).parent_path();
    std::map<std::string, size_t> shard_of_file;
    std::map<std::string, std::string> expected;  // tensor -> shard file name
    for (auto it = wm->begin(); it != wm->end(); ++it) {
      if (!it.value().is_string()) {
        return invalid_argument_error(index_path + ": weight_map['" + it.key() + "'] is not a string");
      }
      std::string shard = it.value().get<std::string>();
      if (!is_safe_relative_name(shard)) {
        return invalid_argument_error(index_path + ": shard name '" + shard +
                                      "' must be a relative path inside the checkpoint folder");
      }
      expected[it.key()] = shard;
      if (!shard_of_file.count(shard)) {
        shard_of_file[shard] = shard_paths.size();
        shard_paths.push_back((dir / shard).string());
      }
    }
    for (const std::string& sp : shard_paths) {
      LTX_ASSIGN_OR_RETURN(auto file, SafetensorsFile::open(sp));
      ckpt.files_.push_back(std::move(file));
    }
    for (const auto& kv : expected) {
      size_t fi = shard_of_file[kv.second];
      if (!ckpt.files_[fi]->contains(kv.first)) {
        return invalid_argument_error(index_path + ": tensor '" + kv.first + "' is mapped to " +
                                      kv.second + ", which does not contain it");
      }
      ckpt.where_[kv.first] = fi;
    }
  } else {
    for (const std::string& sp : shard_paths) {
      LTX_ASSIGN_OR_RETURN(auto file, SafetensorsFile::open(sp));
      for (const std::string& name : file->names()) {
        auto [it, inserted] = ckpt.where_.emplace(name, ckpt.files_.size());
        if (!inserted) {
          return invalid_argument_error(path + ": tensor '" + name + "' appears in both " +
                                        ckpt.files_[it->second]->path() + " and " + sp);
        }
      }
      ckpt.files_.push_back(std::move(file));
    }
  }
  for (const auto& kv : ckpt.where_) ckpt.names_.push_back(kv.first);
  return ckpt;
}

const SafetensorsEntry* SafetensorsCheckpoint::find(const std::string& name) const {
  auto it = where_.find(name);
  return it == where_.end() ? nullptr : files_[it->second]->find(name);
}

const std::map<std::string, std::string>& SafetensorsCheckpoint::metadata() const {
  static const std::map<std::string, std::string> kEmpty;
  return files_.empty() ? kEmpty : files_.front()->metadata();
}

void SafetensorsFile::release_pages(const std::string& name) const {
  const SafetensorsEntry* e = find(name);
  if (e == nullptr || storage_ == nullptr || storage_->map == nullptr) return;
  const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  const uintptr_t begin = reinterpret_cast<uintptr_t>(data_ + e->begin);
  const uintptr_t end = reinterpret_cast<uintptr_t>(data_ + e->end);
  // Every page the tensor touches, also one it shares with a neighbour: a
  // neighbour still mapped as a view faults that page in again from the file
  // (weights are never written in place, so nothing is lost). Interior pages
  // only would keep every small tensor's page, and the kernel maps file pages
  // in large folios (2 MiB each in the measurements): docs/benchmarks.md.
  const uintptr_t first = begin / page * page, last = (end + page - 1) / page * page;
  if (last > first) madvise(reinterpret_cast<void*>(first), last - first, MADV_DONTNEED);
}

void SafetensorsCheckpoint::release_pages(const std::string& name) const {
  auto it = where_.find(name);
  if (it != where_.end()) files_[it->second]->release_pages(name);
}

Result<at::Tensor> SafetensorsCheckpoint::tensor(const std::string& name) const {
  auto it = where_.find(name);
  if (it == where_.end()) return not_found_error(source_ + ": no tensor named '" + name + "'");
  return files_[it->second]->tensor(name);
}

Result<std::string> serialize_safetensors(const NamedTensors& tensors,
                                          const std::map<std::string, std::string>& metadata) {
  struct Item {
    const std::string* name;
    at::Tensor cpu;
    SafetensorsDtype dtype;
  };
  std::vector<Item> items;
  std::set<std::string> seen;
  for (const auto& [name, t] : tensors) {
    if (name.empty()) return invalid_argument_error("safetensors: empty tensor name");
    if (name == "__metadata__") return invalid_argument_error("safetensors: reserved name __metadata__");
    if (!seen.insert(name).second) return invalid_argument_error("safetensors: duplicate tensor name '" + name + "'");
    if (!t.defined()) return invalid_argument_error("safetensors: tensor '" + name + "' is undefined");
    auto dtype = from_scalar_type(t.scalar_type());
    if (!dtype) {
      return invalid_argument_error("safetensors: tensor '" + name + "' has dtype " +
                                    std::string(c10::toString(t.scalar_type())) +
                                    " with no safetensors name");
    }
    items.push_back({&name, t.to(at::kCPU).contiguous(), *dtype});
  }
  std::stable_sort(items.begin(), items.end(), [](const Item& a, const Item& b) {
    size_t sa = safetensors_dtype_size(a.dtype), sb = safetensors_dtype_size(b.dtype);
    return sa != sb ? sa > sb : *a.name < *b.name;
  });
  json header = json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (const Item& it : items) {
    uint64_t n = static_cast<uint64_t>(it.cpu.nbytes());
    header[*it.name] = {{"dtype", safetensors_dtype_name(it.dtype)},
                        {"shape", it.cpu.sizes().vec()},
                        {"data_offsets", {offset, offset + n}}};
    offset += n;
  }
  std::string head = header.dump();
  head.resize((head.size() + 7) / 8 * 8, ' ');
  std::string out;
  out.reserve(8 + head.size() + offset);
  uint64_t len = head.size();
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((len >> (8 * i)) & 0xff));
  out += head;
  for (const Item& it : items) {
    out.append(static_cast<const char*>(it.cpu.data_ptr()), it.cpu.nbytes());
  }
  return out;
}

Status write_safetensors(const std::string& path, const NamedTensors& tensors,
                         const std::map<std::string, std::string>& metadata) {
  LTX_ASSIGN_OR_RETURN(std::string bytes, serialize_safetensors(tensors, metadata));
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) return invalid_argument_error(path + ": cannot create: " + errno_text());
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.flush();
    if (!out) {
      std::remove(tmp.c_str());
      return resource_exhausted_error(path + ": write failed (disk full?)");
    }
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) {
    std::remove(tmp.c_str());
    return invalid_argument_error(path + ": cannot rename into place: " + ec.message());
  }
  return Status();
}

}  // namespace ltx::pipeline
