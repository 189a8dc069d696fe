#include "pipeline/io/safetensors.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "common/torch_compat.h"
#include "tests/test_util.h"

namespace ltx::pipeline {
namespace {
namespace fs = std::filesystem;

// A valid file with one tensor per supported dtype.
NamedTensors sample_tensors() {
  at::manual_seed(7);
  NamedTensors t;
  t.emplace_back("f32", at::randn({3, 5}));
  t.emplace_back("f16", at::randn({4}).to(at::kHalf));
  t.emplace_back("bf16", at::randn({2, 2, 3}).to(at::kBFloat16));
  t.emplace_back("f64", at::randn({2}, at::kDouble));
  t.emplace_back("i64", at::arange(-5, 5, at::kLong));
  t.emplace_back("i32", at::arange(0, 7, at::kInt));
  t.emplace_back("i16", at::arange(-3, 3, at::kShort));
  t.emplace_back("i8", at::arange(-4, 4, at::kChar));
  t.emplace_back("u8", at::arange(0, 255, 17, at::kByte));
  t.emplace_back("bool", at::rand({9}) > 0.5);
  t.emplace_back("scalar", at::scalar_tensor(3.5));
  t.emplace_back("empty", at::empty({0, 4}));
  return t;
}

// A file whose header is exactly `header` followed by `data_bytes` zero bytes.
std::string raw_file(const std::string& header, size_t data_bytes) {
  std::string out(8, '\0');
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return out + header + std::string(data_bytes, '\0');
}

Status open_bytes(const std::string& bytes) {
  auto f = SafetensorsFile::from_bytes(bytes, "mem.safetensors");
  return f.status();
}

TEST(Safetensors, RoundTripsEverySupportedDtype) {
  std::string dir = testing::scratch_dir("st");
  NamedTensors tensors = sample_tensors();
  ASSERT_TRUE(write_safetensors(dir + "/a.safetensors", tensors, {{"format", "pt"}}).ok());
  auto file = SafetensorsFile::open(dir + "/a.safetensors");
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ((*file)->names().size(), tensors.size());
  EXPECT_EQ((*file)->metadata().at("format"), "pt");
  for (const auto& [name, t] : tensors) {
    auto back = (*file)->tensor(name);
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(back->scalar_type(), t.scalar_type()) << name;
    EXPECT_EQ(back->sizes(), t.sizes()) << name;
    EXPECT_TRUE(at::equal(*back, t)) << name;
  }
}

TEST(Safetensors, TensorsAreViewsOfTheMappingAndOutliveTheFile) {
  std::string dir = testing::scratch_dir("st");
  ASSERT_TRUE(write_safetensors(dir + "/a.safetensors", {{"w", at::arange(12, at::kFloat)}}).ok());
  at::Tensor w, w2;
  {
    auto file = SafetensorsFile::open(dir + "/a.safetensors");
    ASSERT_TRUE(file.ok());
    w = *(*file)->tensor("w");
    w2 = *(*file)->tensor("w");
    EXPECT_EQ(w.data_ptr(), w2.data_ptr()) << "two lookups must share the mapped bytes, not copy";
  }
  // The file object is gone; the view keeps the mapping alive. In-place writes
  // stay private to this process (copy-on-write) and never reach the file.
  EXPECT_FLOAT_EQ(w[11].item<float>(), 11.0f);
  w.mul_(2);
  auto again = SafetensorsFile::open(dir + "/a.safetensors");
  EXPECT_FLOAT_EQ((*(*again)->tensor("w"))[11].item<float>(), 11.0f);
}

TEST(Safetensors, ReadsFilesWrittenByTheReferenceLibrary) {
  std::string path = testing::fixture_dir("ltx_transformer_f2h2w2") + "/io.safetensors";
  auto file = SafetensorsFile::open(path);
  ASSERT_TRUE(file.ok()) << file.status();
  auto mask = (*file)->tensor("in.encoder_attention_mask");
  ASSERT_TRUE(mask.ok());
  EXPECT_EQ(mask->scalar_type(), at::kLong);
  EXPECT_EQ(mask->sizes(), (std::vector<int64_t>{2, 7}));
  auto hidden = (*file)->tensor("in.hidden_states");
  ASSERT_TRUE(hidden.ok());
  EXPECT_EQ(hidden->sizes(), (std::vector<int64_t>{2, 8, 8}));
  EXPECT_TRUE(at::isfinite(*hidden).all().item<bool>());

  // A bf16 weight file and the whole fixture tree: every file must parse.
  int files = 0;
  for (const auto& de : fs::recursive_directory_iterator(testing::fixture_dir(""))) {
    if (de.path().extension() != ".safetensors") continue;
    auto f = SafetensorsFile::open(de.path().string());
    ASSERT_TRUE(f.ok()) << f.status();
    for (const auto& n : (*f)->names()) ASSERT_TRUE((*f)->tensor(n).ok()) << de.path() << " " << n;
    ++files;
  }
  EXPECT_GE(files, 20);
}

TEST(Safetensors, MissingTensorIsNotFoundNamingIt) {
  std::string dir = testing::scratch_dir("st");
  ASSERT_TRUE(write_safetensors(dir + "/a.safetensors", {{"w", at::ones({2})}}).ok());
  auto file = SafetensorsFile::open(dir + "/a.safetensors");
  auto t = (*file)->tensor("transformer_blocks.0.attn1.to_q.weight");
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), StatusCode::kNotFound);
  EXPECT_NE(t.status().message().find("transformer_blocks.0.attn1.to_q.weight"), std::string::npos);
  EXPECT_NE(t.status().message().find("a.safetensors"), std::string::npos);
}

struct Malformed {
  const char* what;
  std::string bytes;
  const char* expected;  // part of the error message
};

TEST(Safetensors, RejectsMalformedFilesWithClearErrors) {
  const std::string good = *serialize_safetensors({{"w", at::ones({2, 2})}});
  std::vector<Malformed> cases = {
      {"empty file", "", "truncated"},
      {"truncated length", good.substr(0, 5), "truncated"},
      {"header past EOF", good.substr(0, 20), "runs past the end"},
      {"huge header length", std::string("\xff\xff\xff\xff\xff\xff\x00\x00", 8) + "{}", "exceeds the limit"},
      {"truncated data", good.substr(0, good.size() - 3), "outside the data section"},
      {"not json", raw_file("{not json", 0), "not well-formed JSON"},
      {"not an object", raw_file("[1,2,3]  ", 0), "not a JSON object"},
      {"unknown dtype", raw_file(R"({"w":{"dtype":"F7","shape":[1],"data_offsets":[0,4]}})", 4), "unknown dtype 'F7'"},
      {"shape/size mismatch", raw_file(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8), "need 12 bytes"},
      {"reversed offsets", raw_file(R"({"w":{"dtype":"U8","shape":[0],"data_offsets":[4,0]}})", 4), "reversed"},
      {"out of range", raw_file(R"({"w":{"dtype":"U8","shape":[4],"data_offsets":[8,12]}})", 4), "outside the data section"},
      {"overlap", raw_file(R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"b":{"dtype":"U8","shape":[4],"data_offsets":[2,6]}})", 8), "overlap"},
      {"negative dim", raw_file(R"({"w":{"dtype":"U8","shape":[-1],"data_offsets":[0,0]}})", 0), "not a non-negative integer"},
      {"overflowing shape", raw_file(R"({"w":{"dtype":"F32","shape":[4294967296,4294967296,16],"data_offsets":[0,4]}})", 4), "overflows"},
      {"missing offsets", raw_file(R"({"w":{"dtype":"F32","shape":[1]}})", 4), "data_offsets"},
      {"bad metadata", raw_file(R"({"__metadata__":{"a":1}})", 0), "__metadata__"},
      {"deep nesting", raw_file(std::string(100, '[') + std::string(100, ']'), 0), "nested deeper"},
  };
  for (const auto& c : cases) {
    Status st = open_bytes(c.bytes);
    EXPECT_FALSE(st.ok()) << c.what;
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << c.what << ": " << st;
    EXPECT_NE(st.message().find(c.expected), std::string::npos) << c.what << ": " << st;
    EXPECT_NE(st.message().find("mem.safetensors"), std::string::npos) << c.what << ": " << st;
  }
}

TEST(Safetensors, BoolTensorWithNonBinaryByteIsRefused) {
  auto f = SafetensorsFile::from_bytes(
      raw_file(R"({"b":{"dtype":"BOOL","shape":[2],"data_offsets":[0,2]}})", 0) + std::string("\x01\x07", 2),
      "bool.safetensors");
  ASSERT_TRUE(f.ok()) << f.status();
  auto t = (*f)->tensor("b");
  EXPECT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("not 0 or 1"), std::string::npos);
}

TEST(Safetensors, MissingFileIsNotFound) {
  auto f = SafetensorsFile::open("/nonexistent/x.safetensors");
  EXPECT_EQ(f.status().code(), StatusCode::kNotFound);
}

// Flip bytes of a valid file many times: every outcome is an error or a
// file whose tensors all load; never a crash or an exception.
TEST(Safetensors, FuzzedBytesGiveErrorOrSuccessNeverACrash) {
  const std::string good = *serialize_safetensors(sample_tensors(), {{"k", "v"}});
  std::mt19937 rng(1234);
  int accepted = 0, refused = 0;
  for (int iter = 0; iter < 4000; ++iter) {
    std::string bytes = good;
    int flips = 1 + static_cast<int>(rng() % 4);
    for (int i = 0; i < flips; ++i) {
      // Mostly the length field and header, where the parser lives.
      size_t limit = (iter % 4 == 0) ? bytes.size() : std::min<size_t>(bytes.size(), 8 + 600);
      size_t pos = rng() % limit;
      bytes[pos] = static_cast<char>(rng() & 0xff);
    }
    if (iter % 10 == 0) bytes.resize(rng() % bytes.size());
    try {
      auto f = SafetensorsFile::from_bytes(bytes, "fuzz");
      if (!f.ok()) {
        ++refused;
        continue;
      }
      ++accepted;
      for (const auto& n : (*f)->names()) {
        auto t = (*f)->tensor(n);
        if (t.ok()) (void)t->sum();
      }
    } catch (const std::exception& e) {
      FAIL() << "iteration " << iter << " threw: " << e.what();
    }
  }
  EXPECT_GT(refused, 0);
  EXPECT_GT(accepted, 0);  // flips inside tensor data leave a valid file
}

TEST(SafetensorsCheckpoint, OpensShardedIndexAndFolders) {
  std::string dir = testing::scratch_dir("ckpt");
  ASSERT_TRUE(write_safetensors(dir + "/model-00001-of-00002.safetensors", {{"a", at::ones({2})}}).ok());
  ASSERT_TRUE(write_safetensors(dir + "/model-00002-of-00002.safetensors",
                                {{"b", at::zeros({3})}, {"c", at::ones({1}, at::kLong)}}).ok());
  std::ofstream(dir + "/model.safetensors.index.json")
      << R"({"metadata":{"total_size":1},"weight_map":{"a":"model-00001-of-00002.safetensors",)"
      << R"("b":"model-00002-of-00002.safetensors","c":"model-00002-of-00002.safetensors"}})";
  for (const std::string& path : {dir, dir + "/model.safetensors.index.json"}) {
    auto ckpt = SafetensorsCheckpoint::open(path);
    ASSERT_TRUE(ckpt.ok()) << ckpt.status();
    EXPECT_EQ(ckpt->names(), (std::vector<std::string>{"a", "b", "c"}));
    EXPECT_EQ(ckpt->num_files(), 2u);
    EXPECT_EQ(ckpt->tensor("b")->numel(), 3);
    EXPECT_EQ(ckpt->tensor("zz").status().code(), StatusCode::kNotFound);
  }
  // A folder without an index: every .safetensors file, duplicates refused.
  std::string plain = testing::scratch_dir("ckpt");
  ASSERT_TRUE(write_safetensors(plain + "/one.safetensors", {{"a", at::ones({2})}}).ok());
  ASSERT_TRUE(write_safetensors(plain + "/two.safetensors", {{"b", at::ones({2})}}).ok());
  EXPECT_EQ(SafetensorsCheckpoint::open(plain)->names().size(), 2u);
  ASSERT_TRUE(write_safetensors(plain + "/three.safetensors", {{"a", at::ones({2})}}).ok());
  auto dup = SafetensorsCheckpoint::open(plain);
  EXPECT_FALSE(dup.ok());
  EXPECT_NE(dup.status().message().find("'a' appears in both"), std::string::npos) << dup.status();
}

TEST(SafetensorsCheckpoint, RefusesBadIndexes) {
  std::string dir = testing::scratch_dir("ckpt");
  ASSERT_TRUE(write_safetensors(dir + "/s.safetensors", {{"a", at::ones({2})}}).ok());
  auto with_index = [&](const std::string& text) {
    std::ofstream(dir + "/m.safetensors.index.json") << text;
    return SafetensorsCheckpoint::open(dir + "/m.safetensors.index.json").status();
  };
  EXPECT_NE(with_index(R"({"weight_map":{"a":"../s.safetensors"}})").message().find("relative path inside"),
            std::string::npos);
  EXPECT_NE(with_index(R"({"weight_map":{"a":"/etc/passwd"}})").message().find("relative path inside"),
            std::string::npos);
  EXPECT_NE(with_index(R"({"weight_map":{"b":"s.safetensors"}})").message().find("does not contain it"),
            std::string::npos);
  EXPECT_EQ(with_index(R"({"weight_map":{"a":"missing.safetensors"}})").code(), StatusCode::kNotFound);
  EXPECT_NE(with_index(R"({"nope":1})").message().find("weight_map"), std::string::npos);
  EXPECT_NE(with_index("garbage").message().find("not a JSON object"), std::string::npos);
}

TEST(SafetensorsWriter, RefusesBadInput) {
  EXPECT_FALSE(serialize_safetensors({{"a", at::ones({1})}, {"a", at::ones({1})}}).ok());
  EXPECT_FALSE(serialize_safetensors({{"", at::ones({1})}}).ok());
  EXPECT_FALSE(serialize_safetensors({{"a", at::Tensor()}}).ok());
  EXPECT_FALSE(serialize_safetensors({{"c", at::ones({1}, at::kComplexFloat)}}).ok());
  EXPECT_FALSE(write_safetensors("/nonexistent-dir/x.safetensors", {{"a", at::ones({1})}}).ok());
}

TEST(SafetensorsWriter, NonContiguousInputIsWrittenInLogicalOrder) {
  at::Tensor t = at::arange(6, at::kFloat).view({2, 3}).t();
  auto bytes = serialize_safetensors({{"t", t}});
  auto f = SafetensorsFile::from_bytes(*bytes, "t");
  ASSERT_TRUE(f.ok());
  EXPECT_TRUE(at::equal(*(*f)->tensor("t"), t));
}

}  // namespace
}  // namespace ltx::pipeline
