// The state blob store: atomic writes, clear UNAVAILABLE errors for a full or
// unwritable folder with no temporary file left behind, temporaries of a
// crashed writer removed, retention by age and total bytes.
#include <gtest/gtest.h>

#include <sys/mount.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "pipeline/runtime/continuation_state.h"
#include "tests/test_util.h"

namespace ltx::pipeline {
namespace {

namespace fs = std::filesystem;

size_t files_in(const std::string& dir) {
  size_t n = 0;
  for (const auto& e : fs::directory_iterator(dir)) n += e.is_regular_file();
  return n;
}

TEST(BlobStore, PutGetAndContentAddressing) {
  BlobStore store(testing::scratch_dir("blob-put"));
  const std::string id = store.put("hello").value();
  EXPECT_TRUE(BlobStore::valid_id(id));
  EXPECT_EQ(store.put("hello").value(), id) << "the same bytes, the same blob";
  EXPECT_EQ(store.get(id).value(), "hello");
  EXPECT_EQ(files_in(store.dir()), 1u) << "no temporary file stays";
  EXPECT_EQ(store.get(std::string(64, 'a')).status().code(), StatusCode::kNotFound);
}

TEST(BlobStore, AFolderThatCannotBeWrittenIsUnavailable) {
  const std::string dir = testing::scratch_dir("blob-file");
  const std::string not_a_folder = dir + "/plain-file";
  std::ofstream(not_a_folder) << "x";
  auto r = BlobStore(not_a_folder + "/sub").put("bytes");
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable) << r.status();
}

// A tmpfs of 64 KiB fills up: UNAVAILABLE saying "full", nothing left behind.
TEST(BlobStore, AFullDiskIsUnavailableAndLeavesNoTemporaryFile) {
  const std::string dir = testing::scratch_dir("blob-full");
  if (::mount("tmpfs", dir.c_str(), "tmpfs", 0, "size=64k") != 0) {
    GTEST_SKIP() << "cannot mount a small tmpfs here (needs root): " << std::strerror(errno);
  }
  BlobStore store(dir);
  auto r = store.put(std::string(256 << 10, 'x'));
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(r.status().message().find("is full"), std::string::npos) << r.status();
  EXPECT_EQ(files_in(dir), 0u);
  EXPECT_TRUE(store.put("small").ok()) << "the store works again once there is room";
  ::umount(dir.c_str());
}

TEST(BlobStore, TemporariesOfACrashedWriterAreRemoved) {
  BlobStore store(testing::scratch_dir("blob-tmp"));
  const std::string id = store.put("kept").value();
  std::ofstream(store.dir() + "/" + id + ".tmp.123.0") << "partial";
  std::ofstream(store.dir() + "/" + std::string(64, 'b') + ".tmp.9.9") << "partial";
  EXPECT_EQ(store.remove_temporaries(), 2u);
  EXPECT_EQ(files_in(store.dir()), 1u);
  EXPECT_EQ(store.get(id).value(), "kept");
}

TEST(BlobStore, RetentionByBytesThenAge) {
  BlobStore store(testing::scratch_dir("blob-prune"));
  std::vector<std::string> ids;
  for (int i = 0; i < 4; ++i) {
    ids.push_back(store.put(std::string(1000, static_cast<char>('a' + i))).value());
    // Oldest first: i seconds apart in the past.
    fs::last_write_time(store.dir() + "/" + ids.back(), fs::file_time_type::clock::now() - std::chrono::seconds(100 - i));
  }
  auto u = store.prune(/*max_bytes=*/2500, /*max_age_s=*/0);
  EXPECT_EQ(u.pruned_files, 2);
  EXPECT_EQ(u.files, 2);
  EXPECT_EQ(u.bytes, 2000);
  EXPECT_FALSE(store.get(ids[0]).ok()) << "the oldest goes first";
  EXPECT_TRUE(store.get(ids[3]).ok());
  u = store.prune(0, /*max_age_s=*/50);
  EXPECT_EQ(u.pruned_files, 2) << "both are 97-98 s old";
  EXPECT_EQ(u.files, 0);
  // A put of existing bytes refreshes the blob's age.
  const std::string id = store.put("again").value();
  fs::last_write_time(store.dir() + "/" + id, fs::file_time_type::clock::now() - std::chrono::seconds(1000));
  store.put("again").value();
  EXPECT_EQ(store.prune(0, 50).pruned_files, 0);
}

}  // namespace
}  // namespace ltx::pipeline
