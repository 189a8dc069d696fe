// Safetensors: a validating, memory-mapping reader, sharded checkpoints, a writer.
//
// The reader maps the file once and validates its header completely before
// anything is handed out (length bounds, well-formed JSON, known dtypes, shape x
// dtype size = byte span, spans inside the data section and not overlapping);
// a hostile or truncated file gets an error naming the file and the problem.
// Tensors are CPU views of the mapping (copy-on-write pages, no copy, the
// mapping lives as long as any view), copied only when a span is misaligned.
// Opened files are immutable and may be shared across threads.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"

namespace ltx::pipeline {

enum class SafetensorsDtype {
  kBool, kU8, kI8, kI16, kU16, kF16, kBF16, kI32, kU32, kF32, kF64, kI64, kU64, kF8E4M3, kF8E5M2,
};

// "F32", "BF16", ...
const char* safetensors_dtype_name(SafetensorsDtype dtype);
std::optional<SafetensorsDtype> parse_safetensors_dtype(const std::string& name);
size_t safetensors_dtype_size(SafetensorsDtype dtype);
// nullopt when this libtorch has no matching scalar type (e.g. F8 before 2.1).
std::optional<at::ScalarType> to_scalar_type(SafetensorsDtype dtype);
std::optional<SafetensorsDtype> from_scalar_type(at::ScalarType type);

struct SafetensorsEntry {
  std::string name;
  SafetensorsDtype dtype;
  std::vector<int64_t> shape;
  uint64_t begin = 0;  // byte offsets into the data section
  uint64_t end = 0;
  int64_t numel() const;
};

class SafetensorsFile {
 public:
  // Hard limit on the JSON header, as in the reference implementation.
  static constexpr uint64_t kMaxHeaderBytes = 100'000'000;

  static Result<std::shared_ptr<const SafetensorsFile>> open(const std::string& path);
  // Parses an in-memory file (continuation-state blobs). `label` names it in errors.
  static Result<std::shared_ptr<const SafetensorsFile>> from_bytes(std::string bytes,
                                                                   const std::string& label);

  const std::string& path() const { return label_; }
  // Tensor names in sorted order.
  const std::vector<std::string>& names() const { return names_; }
  bool contains(const std::string& name) const { return entries_.count(name) != 0; }
  const SafetensorsEntry* find(const std::string& name) const;
  // A CPU tensor of the stored dtype and shape; NOT_FOUND names the missing tensor.
  Result<at::Tensor> tensor(const std::string& name) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  // Gives back the mapped pages that hold `name`'s bytes (madvise
  // MADV_DONTNEED; a later read faults them in from the file again). Loaders
  // call it once a tensor has been converted into memory of its own, so a
  // load never keeps the file's pages resident beside the converted weights.
  // Pages shared with a neighbour go too; a view of the neighbour reads them
  // again from the file, which is exact as long as no view was written to
  // (weights never are). A no-op for in-memory files.
  void release_pages(const std::string& name) const;

  struct Storage;  // the mapping or owned bytes

 private:
  SafetensorsFile() = default;
  static Result<std::shared_ptr<const SafetensorsFile>> parse(std::shared_ptr<Storage> storage,
                                                              const std::string& label);

  std::string label_;
  std::shared_ptr<Storage> storage_;
  const uint8_t* data_ = nullptr;  // start of the data section
  uint64_t data_size_ = 0;
  std::map<std::string, SafetensorsEntry> entries_;
  std::vector<std::string> names_;
  std::map<std::string, std::string> metadata_;
};

// One logical checkpoint over one file or several shards. Accepts a
// .safetensors file, a *.safetensors.index.json, or a folder holding exactly one
// index or else one or more .safetensors files. Shard names from an index must
// stay inside its folder. A tensor name in two shards is an error.
class SafetensorsCheckpoint {
 public:
  static Result<SafetensorsCheckpoint> open(const std::string& path);

  const std::vector<std::string>& names() const { return names_; }
  bool contains(const std::string& name) const { return where_.count(name) != 0; }
  const SafetensorsEntry* find(const std::string& name) const;
  Result<at::Tensor> tensor(const std::string& name) const;
  // Where the checkpoint came from (for error messages).
  const std::string& source() const { return source_; }
  // The __metadata__ of the first file (a single-file checkpoint's config).
  const std::map<std::string, std::string>& metadata() const;
  size_t num_files() const { return files_.size(); }
  // See SafetensorsFile::release_pages.
  void release_pages(const std::string& name) const;

 private:
  std::string source_;
  std::vector<std::shared_ptr<const SafetensorsFile>> files_;
  std::map<std::string, size_t> where_;  // tensor name -> index into files_
  std::vector<std::string> names_;
};

using NamedTensors = std::vector<std::pair<std::string, at::Tensor>>;

// Serialises tensors (any device; copied to CPU) in the safetensors format.
// Names must be unique and non-empty; each tensor's dtype must have a
// safetensors name. Tensors are laid out by decreasing element size so every
// span stays aligned.
Result<std::string> serialize_safetensors(const NamedTensors& tensors,
                                          const std::map<std::string, std::string>& metadata = {});
// Writes atomically (temporary file, then rename).
Status write_safetensors(const std::string& path, const NamedTensors& tensors,
                         const std::map<std::string, std::string>& metadata = {});

}  // namespace ltx::pipeline
