#include "protocol/frame.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <vector>

namespace tally {
namespace {

std::vector<uint8_t> Body(std::string_view text) {
  return std::vector<uint8_t>(text.begin(), text.end());
}

std::vector<uint8_t> MakeFrame(uint64_t id, std::string_view body,
                               FrameKind kind = FrameKind::kRequest) {
  std::vector<uint8_t> out;
  AppendFrame(&out, kind, id, Body(body));
  return out;
}

std::string BodyText(const Frame& frame) {
  return std::string(frame.body.begin(), frame.body.end());
}

// Feeds all of `bytes` (Append may take less than offered) and collects every
// frame; stops at the first error and returns it through *error.
std::vector<std::pair<uint64_t, std::string>> Drain(
    FrameDecoder& decoder, std::span<const uint8_t> bytes, Status* error,
    size_t chunk = SIZE_MAX) {
  std::vector<std::pair<uint64_t, std::string>> frames;
  size_t at = 0;
  for (;;) {
    for (;;) {
      Result<std::optional<Frame>> next = decoder.Next();
      if (!next.ok()) {
        *error = next.status();
        return frames;
      }
      if (!next->has_value()) break;
      frames.emplace_back((*next)->header.request_id, BodyText(**next));
    }
    if (at == bytes.size()) return frames;
    const size_t n = std::min(chunk, bytes.size() - at);
    const size_t taken = decoder.Append(bytes.subspan(at, n));
    EXPECT_GT(taken, 0u) << "the decoder must take bytes after a drain";
    if (taken == 0) return frames;
    at += taken;
  }
}

std::vector<uint8_t> RawHeader(uint32_t magic, uint8_t version, uint8_t kind,
                               uint16_t flags, uint32_t body_length,
                               uint32_t reserved, uint64_t request_id) {
  std::vector<uint8_t> h(kFrameHeaderSize);
  auto put = [&](size_t at, uint64_t v, size_t n) {
    for (size_t i = 0; i < n; ++i)
      h[at + i] = static_cast<uint8_t>(v >> (8 * i));
  };
  put(0, magic, 4);
  h[4] = version;
  h[5] = kind;
  put(6, flags, 2);
  put(8, body_length, 4);
  put(12, reserved, 4);
  put(16, request_id, 8);
  return h;
}

Status FirstError(std::span<const uint8_t> bytes, size_t max_body = 1024) {
  FrameDecoder decoder(max_body);
  Status error;
  Drain(decoder, bytes, &error);
  return error;
}

TEST(FrameTest, HeaderIsLittleEndianAtTheDocumentedOffsets) {
  std::vector<uint8_t> frame = MakeFrame(0x0102030405060708, "abc");
  ASSERT_EQ(frame.size(), kFrameHeaderSize + 3);
  EXPECT_EQ(std::string(frame.begin(), frame.begin() + 4), "TALY");
  std::vector<uint8_t> expected = {'T', 'A', 'L', 'Y',  // magic 0x594C4154
                                   1,                   // version
                                   1,                   // kind: request
                                   0,   0,              // flags
                                   3,   0,   0,   0,    // body_length
                                   0,   0,   0,   0,    // reserved
                                   8,   7,   6,   5,
                                   4,   3,   2,   1,  // request_id
                                   'a', 'b', 'c'};
  EXPECT_EQ(frame, expected);
}

TEST(FrameTest, WholeFrameDecodes) {
  std::vector<uint8_t> bytes = MakeFrame(42, "hello");
  FrameDecoder decoder;
  ASSERT_EQ(decoder.Append(bytes), bytes.size());
  Result<std::optional<Frame>> next = decoder.Next();
  ASSERT_TRUE(next.ok()) << next.status().ToString();
  ASSERT_TRUE(next->has_value());
  const Frame& frame = **next;
  EXPECT_EQ(frame.header.kind, FrameKind::kRequest);
  EXPECT_EQ(frame.header.version, kFrameVersion);
  EXPECT_EQ(frame.header.request_id, 42u);
  EXPECT_EQ(frame.header.body_length, 5u);
  EXPECT_EQ(BodyText(frame), "hello");
  EXPECT_EQ(reinterpret_cast<uintptr_t>(frame.body.data()) % 8, 0u);
  Result<std::optional<Frame>> again = decoder.Next();
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->has_value());
  EXPECT_EQ(decoder.buffered(), 0u);
}

TEST(FrameTest, EmptyBodyIsAValidFrame) {
  std::vector<uint8_t> bytes = MakeFrame(7, "");
  Status error;
  FrameDecoder decoder;
  auto frames = Drain(decoder, bytes, &error);
  ASSERT_TRUE(error.ok()) << error.ToString();
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].first, 7u);
  EXPECT_EQ(frames[0].second, "");
}

// Found by fuzz_response_decode: an empty body right after a body of odd
// length starts unaligned, and was "copied" to a scratch buffer that did not
// exist yet (memcpy from a null pointer, UBSan).
TEST(FrameTest, EmptyBodyAtAnUnalignedOffsetDecodes) {
  std::vector<uint8_t> bytes = MakeFrame(1, "abc");
  const std::vector<uint8_t> empty = MakeFrame(2, "");
  bytes.insert(bytes.end(), empty.begin(), empty.end());
  Status error;
  FrameDecoder decoder;
  auto frames = Drain(decoder, bytes, &error);
  ASSERT_TRUE(error.ok()) << error.ToString();
  ASSERT_EQ(frames.size(), 2u);
  EXPECT_EQ(frames[1].first, 2u);
  EXPECT_EQ(frames[1].second, "");
}

TEST(FrameTest, ByteByByteFeedingYieldsTheFrameOnceComplete) {
  std::vector<uint8_t> bytes = MakeFrame(9, "byte by byte");
  FrameDecoder decoder;
  for (size_t i = 0; i + 1 < bytes.size(); ++i) {
    ASSERT_EQ(decoder.Append(std::span(bytes).subspan(i, 1)), 1u);
    Result<std::optional<Frame>> next = decoder.Next();
    ASSERT_TRUE(next.ok()) << "byte " << i << ": " << next.status().ToString();
    ASSERT_FALSE(next->has_value()) << "frame before its last byte, at " << i;
  }
  ASSERT_EQ(decoder.Append(std::span(bytes).last(1)), 1u);
  Result<std::optional<Frame>> next = decoder.Next();
  ASSERT_TRUE(next.ok());
  ASSERT_TRUE(next->has_value());
  EXPECT_EQ(BodyText(**next), "byte by byte");
  EXPECT_EQ((*next)->header.request_id, 9u);
}

TEST(FrameTest, ManyFramesInOneBufferComeOutInOrder) {
  std::vector<uint8_t> bytes;
  for (uint64_t id = 1; id <= 100; ++id) {
    // Odd body sizes: most bodies start misaligned in the stream.
    std::string body(static_cast<size_t>(id % 13),
                     static_cast<char>('a' + id % 26));
    AppendFrame(&bytes, FrameKind::kResponse, id, Body(body));
  }
  FrameDecoder decoder;
  Status error;
  auto frames = Drain(decoder, bytes, &error);
  ASSERT_TRUE(error.ok()) << error.ToString();
  ASSERT_EQ(frames.size(), 100u);
  for (uint64_t id = 1; id <= 100; ++id) {
    EXPECT_EQ(frames[id - 1].first, id);
    EXPECT_EQ(frames[id - 1].second,
              std::string(static_cast<size_t>(id % 13),
                          static_cast<char>('a' + id % 26)));
  }
}

TEST(FrameTest, RandomChunkingGivesTheSameFrames) {
  std::vector<uint8_t> bytes;
  for (uint64_t id = 1; id <= 200; ++id) {
    AppendFrame(&bytes, FrameKind::kRequest, id,
                Body(std::string(static_cast<size_t>(id * 7 % 301), 'x')));
  }
  std::mt19937_64 rng(1234);
  for (int round = 0; round < 20; ++round) {
    FrameDecoder decoder;
    std::vector<uint64_t> ids;
    size_t at = 0;
    while (at < bytes.size()) {
      const size_t n = std::min<size_t>(1 + rng() % 97, bytes.size() - at);
      at += decoder.Append(std::span(bytes).subspan(at, n));
      for (;;) {
        Result<std::optional<Frame>> next = decoder.Next();
        ASSERT_TRUE(next.ok()) << next.status().ToString();
        if (!next->has_value()) break;
        EXPECT_EQ(reinterpret_cast<uintptr_t>((*next)->body.data()) % 8, 0u);
        ids.push_back((*next)->header.request_id);
      }
    }
    ASSERT_EQ(ids.size(), 200u);
    for (uint64_t i = 0; i < 200; ++i) EXPECT_EQ(ids[i], i + 1);
  }
}

TEST(FrameTest, PrepareAndCommitReadStraightIntoTheDecoder) {
  std::vector<uint8_t> bytes = MakeFrame(5, "zero copy");
  FrameDecoder decoder;
  std::span<uint8_t> room = decoder.Prepare(4096);
  ASSERT_GE(room.size(), bytes.size());
  std::memcpy(room.data(), bytes.data(), bytes.size());
  decoder.Commit(bytes.size());
  Result<std::optional<Frame>> next = decoder.Next();
  ASSERT_TRUE(next.ok());
  ASSERT_TRUE(next->has_value());
  EXPECT_EQ(BodyText(**next), "zero copy");
}

TEST(FrameTest, BadMagicIsProtocolError) {
  std::vector<uint8_t> bytes = MakeFrame(1, "x");
  bytes[2] ^= 0xff;
  Status error = FirstError(bytes);
  EXPECT_EQ(error.code(), Code::kProtocolError) << error.ToString();
}

TEST(FrameTest, GarbageFailsOnItsFirstByteWithoutAWholeHeader) {
  FrameDecoder decoder;
  const uint8_t zero = 0;
  ASSERT_EQ(decoder.Append(std::span(&zero, 1)), 1u);
  Result<std::optional<Frame>> next = decoder.Next();
  ASSERT_FALSE(next.ok());
  EXPECT_EQ(next.status().code(), Code::kProtocolError);
}

TEST(FrameTest, BadVersionIsUnsupportedVersion) {
  std::vector<uint8_t> h = RawHeader(kFrameMagic, 2, 1, 0, 0, 0, 1);
  Status error = FirstError(h);
  EXPECT_EQ(error.code(), Code::kUnsupportedVersion) << error.ToString();
}

TEST(FrameTest, UnknownKindIsProtocolError) {
  for (uint8_t kind : {0, 3, 255}) {
    Status error = FirstError(RawHeader(kFrameMagic, 1, kind, 0, 0, 0, 1));
    EXPECT_EQ(error.code(), Code::kProtocolError) << int{kind};
  }
}

TEST(FrameTest, NonZeroFlagsOrReservedIsProtocolError) {
  EXPECT_EQ(FirstError(RawHeader(kFrameMagic, 1, 1, 1, 0, 0, 1)).code(),
            Code::kProtocolError);
  EXPECT_EQ(
      FirstError(RawHeader(kFrameMagic, 1, 1, 0, 0, 0x80000000, 1)).code(),
      Code::kProtocolError);
}

TEST(FrameTest, UnexpectedKindIsProtocolError) {
  FrameDecoder server(kDefaultMaxFrameBody, FrameKind::kRequest);
  std::vector<uint8_t> bytes = MakeFrame(1, "x", FrameKind::kResponse);
  Status error;
  auto frames = Drain(server, bytes, &error);
  EXPECT_TRUE(frames.empty());
  EXPECT_EQ(error.code(), Code::kProtocolError) << error.ToString();
}

TEST(FrameTest, OversizeLengthIsRejectedFromTheHeaderAlone) {
  for (uint32_t length :
       {uint32_t{1024 * 1024 + 1}, uint32_t{1} << 31, UINT32_MAX}) {
    FrameDecoder decoder;  // max body 1 MiB
    std::vector<uint8_t> h = RawHeader(kFrameMagic, 1, 1, 0, length, 0, 1);
    ASSERT_EQ(decoder.Append(h), h.size());
    EXPECT_LE(decoder.buffered(), kFrameHeaderSize);
    Result<std::optional<Frame>> next = decoder.Next();
    ASSERT_FALSE(next.ok()) << length;
    EXPECT_EQ(next.status().code(), Code::kFrameTooLarge);
    // Nothing of the claimed body was ever buffered or allocated, and the
    // failed decoder holds no buffer at all.
    EXPECT_EQ(decoder.buffered(), 0u);
    EXPECT_EQ(decoder.capacity(), 0u);
    EXPECT_EQ(decoder.writable(), 0u);
  }
}

TEST(FrameTest, BodyOfExactlyMaxIsAccepted) {
  FrameDecoder decoder(100);
  std::vector<uint8_t> bytes = MakeFrame(3, std::string(100, 'm'));
  Status error;
  auto frames = Drain(decoder, bytes, &error);
  ASSERT_TRUE(error.ok()) << error.ToString();
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(FirstError(MakeFrame(3, std::string(101, 'm')), 100).code(),
            Code::kFrameTooLarge);
}

TEST(FrameTest, BufferedBytesNeverExceedHeaderPlusMaxBody) {
  FrameDecoder decoder(100);
  std::vector<uint8_t> bytes;
  for (int i = 0; i < 50; ++i)
    AppendFrame(&bytes, FrameKind::kRequest, i, Body("0123456789"));
  EXPECT_EQ(decoder.Append(bytes), kFrameHeaderSize + 100);
  EXPECT_EQ(decoder.buffered(), kFrameHeaderSize + 100);
  EXPECT_EQ(decoder.writable(), 0u);
  EXPECT_LE(decoder.capacity(), 4096u);
  Status error;
  auto frames =
      Drain(decoder, std::span(bytes).subspan(kFrameHeaderSize + 100), &error);
  ASSERT_TRUE(error.ok()) << error.ToString();
  EXPECT_EQ(frames.size(), 50u);
}

TEST(FrameTest, GarbageAfterAValidFrameFailsAfterThatFrame) {
  std::vector<uint8_t> bytes = MakeFrame(11, "good");
  for (int i = 0; i < 64; ++i) bytes.push_back(static_cast<uint8_t>(i * 37));
  FrameDecoder decoder;
  Status error;
  auto frames = Drain(decoder, bytes, &error);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].second, "good");
  EXPECT_EQ(error.code(), Code::kProtocolError) << error.ToString();
}

TEST(FrameTest, DecoderStaysFailedAfterAnError) {
  FrameDecoder decoder;
  std::vector<uint8_t> bad = RawHeader(0xdeadbeef, 1, 1, 0, 0, 0, 1);
  ASSERT_EQ(decoder.Append(bad), bad.size());
  Result<std::optional<Frame>> first = decoder.Next();
  ASSERT_FALSE(first.ok());
  EXPECT_TRUE(decoder.failed());
  // A perfectly good frame afterwards changes nothing: the stream is lost.
  std::vector<uint8_t> good = MakeFrame(2, "late");
  EXPECT_EQ(decoder.Append(good), 0u);
  EXPECT_TRUE(decoder.Prepare(100).empty());
  for (int i = 0; i < 3; ++i) {
    Result<std::optional<Frame>> next = decoder.Next();
    ASSERT_FALSE(next.ok());
    EXPECT_EQ(next.status().code(), first.status().code());
    EXPECT_EQ(next.status().message(), first.status().message());
  }
  EXPECT_EQ(decoder.status().code(), Code::kProtocolError);
}

TEST(FrameTest, LargeBufferIsFreedOnceDrained) {
  FrameDecoder decoder;
  std::vector<uint8_t> big = MakeFrame(1, std::string(512 * 1024, 'b'));
  ASSERT_EQ(decoder.Append(big), big.size());
  Result<std::optional<Frame>> frame = decoder.Next();
  ASSERT_TRUE(frame.ok());
  ASSERT_TRUE(frame->has_value());
  EXPECT_GE(decoder.capacity(), big.size());  // the body is still readable
  EXPECT_EQ((*frame)->body.back(), 'b');
  // The next call reclaims the drained buffer.
  Result<std::optional<Frame>> next = decoder.Next();
  ASSERT_TRUE(next.ok());
  EXPECT_FALSE(next->has_value());
  EXPECT_EQ(decoder.capacity(), 0u);
}

TEST(FrameTest, RandomStreamsStayWithinTheBufferBound) {
  // Valid frames with random bytes spliced in, fed in random chunks: the
  // decoder must return frames or one error, and never buffer more than
  // header + max_body.
  std::mt19937_64 rng(99);
  constexpr size_t kMaxBody = 256;
  for (int round = 0; round < 500; ++round) {
    std::vector<uint8_t> stream;
    for (int i = 0; i < 5; ++i) {
      AppendFrame(&stream, FrameKind::kRequest, i,
                  Body(std::string(rng() % 300, 'v')));
    }
    for (int i = 0, n = static_cast<int>(rng() % 4); i < n; ++i) {
      stream[rng() % stream.size()] = static_cast<uint8_t>(rng());
    }
    FrameDecoder decoder(kMaxBody);
    size_t at = 0;
    bool failed = false;
    while (!failed) {
      Result<std::optional<Frame>> next = decoder.Next();
      if (!next.ok()) {
        failed = true;
        break;
      }
      if (next->has_value()) {
        EXPECT_LE((*next)->body.size(), kMaxBody);
        continue;
      }
      if (at == stream.size()) break;
      const size_t n = std::min<size_t>(1 + rng() % 128, stream.size() - at);
      at += decoder.Append(std::span(stream).subspan(at, n));
      EXPECT_LE(decoder.buffered(), kFrameHeaderSize + kMaxBody);
      EXPECT_LE(decoder.capacity(), 2 * (kFrameHeaderSize + kMaxBody) + 8);
    }
    EXPECT_EQ(failed, decoder.failed());
  }
}

TEST(FrameTest, DecodeFrameHeaderChecksWithoutADecoder) {
  std::vector<uint8_t> frame = MakeFrame(77, "abcd", FrameKind::kResponse);
  Result<FrameHeader> header =
      DecodeFrameHeader(std::span<const uint8_t, kFrameHeaderSize>(
                            frame.data(), kFrameHeaderSize),
                        kDefaultMaxFrameBody);
  ASSERT_TRUE(header.ok());
  EXPECT_EQ(header->kind, FrameKind::kResponse);
  EXPECT_EQ(header->body_length, 4u);
  EXPECT_EQ(header->request_id, 77u);
  Result<FrameHeader> small =
      DecodeFrameHeader(std::span<const uint8_t, kFrameHeaderSize>(
                            frame.data(), kFrameHeaderSize),
                        3);
  EXPECT_EQ(small.status().code(), Code::kFrameTooLarge);
}

}  // namespace
}  // namespace tally
