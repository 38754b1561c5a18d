// Tests of the CRC and of the log format: round trips across blocks, torn
// tails at every offset, and resynchronisation after a flipped byte. The
// files live in memory.
#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "gtest/gtest.h"
#include "station/spool/crc32c.h"
#include "station/spool/env.h"
#include "station/spool/log_format.h"
#include "station/spool/log_reader.h"
#include "station/spool/log_writer.h"

namespace stephub::station::log {
namespace {

class StringFile : public WritableFile {
 public:
  explicit StringFile(std::string* contents) : contents_(contents) {}
  absl::Status Append(absl::string_view data) override {
    contents_->append(data.data(), data.size());
    return absl::OkStatus();
  }
  absl::Status Flush() override { return absl::OkStatus(); }
  absl::Status Sync() override { return absl::OkStatus(); }
  absl::Status Close() override { return absl::OkStatus(); }

 private:
  std::string* const contents_;
};

class StringSource : public SequentialFile {
 public:
  explicit StringSource(absl::string_view contents) : contents_(contents) {}
  absl::Status Read(size_t n, absl::string_view* result, char*) override {
    *result = contents_.substr(0, n);
    contents_.remove_prefix(result->size());
    return absl::OkStatus();
  }
  absl::Status Skip(uint64_t n) override {
    contents_.remove_prefix(std::min<uint64_t>(n, contents_.size()));
    return absl::OkStatus();
  }

 private:
  absl::string_view contents_;
};

struct Dropped {
  uint64_t offset;
  uint64_t bytes;
  std::string reason;
};

class Collector : public LogReader::Reporter {
 public:
  void Dropped(uint64_t offset, uint64_t bytes,
               absl::string_view reason) override {
    dropped.push_back({offset, bytes, std::string(reason)});
  }
  uint64_t total() const {
    uint64_t sum = 0;
    for (const auto& d : dropped) sum += d.bytes;
    return sum;
  }
  std::vector<struct Dropped> dropped;
};

// A record that names its index (when there is room) and differs from its
// neighbours in every byte position.
std::string Payload(int index, size_t size) {
  std::string s = absl::StrCat("record ", index, " ");
  s.resize(size);
  for (size_t i = s.size(); i < size; ++i) {
    s[i] = static_cast<char>('a' + (index * 7 + i) % 26);
  }
  return s;
}

struct ReadResult {
  std::vector<std::string> records;
  std::vector<uint64_t> ends;
  Collector collector;
};

void ReadAll(absl::string_view file, uint64_t start, ReadResult* result) {
  StringSource source(file);
  LogReader reader(&source, &result->collector, start);
  std::string record;
  while (reader.ReadRecord(&record)) {
    result->records.push_back(record);
    result->ends.push_back(reader.record_end());
  }
  ASSERT_TRUE(reader.status().ok());
}

TEST(Crc32cTest, MatchesTheStandardCheckValue) {
  EXPECT_EQ(crc32c::Value("123456789"), 0xE3069283u);
  EXPECT_EQ(crc32c::Value('1', "23456789"), 0xE3069283u);
  // iSCSI test vector: 32 zero bytes.
  EXPECT_EQ(crc32c::Value(std::string(32, '\0')), 0x8A9136AAu);
}

TEST(Crc32cTest, MaskIsReversibleAndChangesTheValue) {
  const uint32_t crc = crc32c::Value("foo");
  EXPECT_NE(crc32c::Mask(crc), crc);
  EXPECT_NE(crc32c::Mask(crc32c::Mask(crc)), crc);
  EXPECT_EQ(crc32c::Unmask(crc32c::Mask(crc)), crc);
  EXPECT_EQ(crc32c::Unmask(crc32c::Unmask(crc32c::Mask(crc32c::Mask(crc)))),
            crc);
}

TEST(LogTest, RoundTripAcrossBlocksAndBigRecords) {
  const std::vector<size_t> sizes = {
      0,
      1,
      100,
      kBlockSize - kHeaderSize,                // exactly fills a block
      kBlockSize - 2 * kHeaderSize - 100 + 3,  // leaves a short trailer
      10,
      kBlockSize,
      3 * kBlockSize + 17,
      kBlockSize - kHeaderSize - 1,
      0,
      200000,
      5};
  std::string file;
  StringFile sink(&file);
  LogWriter writer(&sink, 0);
  std::vector<uint64_t> ends;
  for (size_t i = 0; i < sizes.size(); ++i) {
    const uint64_t expected = LogWriter::PhysicalSize(file.size(), sizes[i]);
    ASSERT_TRUE(writer.AddRecord(Payload(static_cast<int>(i), sizes[i])).ok());
    EXPECT_EQ(file.size(), writer.length());
    ends.push_back(file.size());
    EXPECT_EQ(ends.size() > 1 ? ends[i] - ends[i - 1] : ends[0], expected)
        << "record " << i;
  }
  ReadResult result;
  ReadAll(file, 0, &result);
  ASSERT_EQ(result.records.size(), sizes.size());
  for (size_t i = 0; i < sizes.size(); ++i) {
    EXPECT_EQ(result.records[i], Payload(static_cast<int>(i), sizes[i]))
        << "record " << i;
  }
  EXPECT_EQ(result.ends, ends);
  EXPECT_TRUE(result.collector.dropped.empty());

  // Starting at any record boundary reads the rest.
  for (size_t i = 0; i < ends.size(); ++i) {
    ReadResult rest;
    ReadAll(file, ends[i], &rest);
    EXPECT_EQ(rest.records.size(), sizes.size() - i - 1) << "after " << i;
    EXPECT_TRUE(rest.collector.dropped.empty());
  }
}

TEST(LogTest, ContinuesAnExistingFile) {
  std::string file;
  StringFile sink(&file);
  {
    LogWriter writer(&sink, 0);
    ASSERT_TRUE(writer.AddRecord(Payload(0, kBlockSize - 100)).ok());
  }
  LogWriter writer(&sink, file.size());
  ASSERT_TRUE(writer.AddRecord(Payload(1, 500)).ok());
  ReadResult result;
  ReadAll(file, 0, &result);
  ASSERT_EQ(result.records.size(), 2u);
  EXPECT_EQ(result.records[1], Payload(1, 500));
}

// Records ending 40 bytes before a block boundary, then a last record that
// is split across it.
std::string FileWithSplitLastRecord(std::vector<uint64_t>* ends) {
  std::string file;
  StringFile sink(&file);
  LogWriter writer(&sink, 0);
  for (int i = 0; i < 3; ++i) {
    const size_t size = i < 2 ? 10000 : kBlockSize - 40 - file.size() - 7;
    EXPECT_TRUE(writer.AddRecord(Payload(i, size)).ok());
    ends->push_back(file.size());
  }
  EXPECT_EQ(file.size(), kBlockSize - 40);
  EXPECT_TRUE(writer.AddRecord(Payload(3, 100)).ok());
  ends->push_back(file.size());
  return file;
}

TEST(LogTest, TornTailAtEveryOffsetIsDroppedAndTheRestSurvives) {
  std::vector<uint64_t> ends;
  const std::string full = FileWithSplitLastRecord(&ends);
  const uint64_t last_start = ends[2];
  ASSERT_GT(full.size(), kBlockSize);  // the last record spans the boundary
  for (uint64_t cut = last_start; cut < full.size(); ++cut) {
    ReadResult result;
    ReadAll(absl::string_view(full).substr(0, cut), 0, &result);
    ASSERT_EQ(result.records.size(), 3u) << "cut at " << cut;
    EXPECT_EQ(result.ends.back(), last_start);
    // Whatever is reported lies behind the last intact record.
    for (const auto& d : result.collector.dropped) {
      EXPECT_GE(d.offset, last_start) << "cut at " << cut << ": " << d.reason;
    }
    EXPECT_LE(result.collector.total(), cut - last_start);
  }
}

TEST(LogTest, FlippedByteIsReportedAndReadingResumesAtTheNextBlock) {
  std::string file;
  StringFile sink(&file);
  LogWriter writer(&sink, 0);
  std::vector<uint64_t> starts;
  for (int i = 0; i < 40; ++i) {
    starts.push_back(file.size());
    ASSERT_TRUE(writer.AddRecord(Payload(i, 3000)).ok());
  }
  ASSERT_GT(file.size(), 3 * kBlockSize);
  // Damage record 13, in the second block, in its payload.
  const int damaged = 13;
  ASSERT_EQ(starts[damaged] / kBlockSize, 1u);
  file[starts[damaged] + kHeaderSize + 50] ^= 0x40;

  ReadResult result;
  ReadAll(file, 0, &result);
  ASSERT_FALSE(result.collector.dropped.empty());
  EXPECT_EQ(result.collector.dropped[0].reason, "checksum mismatch");
  EXPECT_EQ(result.collector.dropped[0].offset, starts[damaged]);
  // The records before it and everything from the third block on survive.
  std::vector<int> survivors;
  for (const std::string& r : result.records) {
    for (int i = 0; i < 40; ++i) {
      if (r == Payload(i, 3000)) survivors.push_back(i);
    }
  }
  ASSERT_GE(survivors.size(), 30u);
  for (int i = 0; i < damaged; ++i) EXPECT_EQ(survivors[i], i);
  EXPECT_EQ(survivors.back(), 39);
  for (int i = 0; i < 40; ++i) {
    const bool kept =
        std::find(survivors.begin(), survivors.end(), i) != survivors.end();
    // A record's first fragment starts after any block padding.
    const uint64_t first_fragment =
        kBlockSize - starts[i] % kBlockSize < kHeaderSize
            ? starts[i] + kBlockSize - starts[i] % kBlockSize
            : starts[i];
    // Lost: the damaged record, the rest of its block, and the record that
    // continues from there into the next block.
    const bool in_lost_range = i >= damaged && first_fragment < 2 * kBlockSize;
    EXPECT_EQ(kept, !in_lost_range) << "record " << i;
  }
}

TEST(LogTest, ZeroFilledTailIsNotARecord) {
  std::string file;
  StringFile sink(&file);
  LogWriter writer(&sink, 0);
  ASSERT_TRUE(writer.AddRecord("hello").ok());
  const uint64_t end = file.size();
  file.append(4096, '\0');  // what a file system may show after a power cut
  ReadResult result;
  ReadAll(file, 0, &result);
  ASSERT_EQ(result.records.size(), 1u);
  EXPECT_EQ(result.ends.back(), end);
  EXPECT_EQ(result.collector.total(), 4096u);
}

}  // namespace
}  // namespace stephub::station::log
