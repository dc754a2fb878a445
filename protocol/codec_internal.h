// Helpers shared by the codec's .cc files. Private to protocol/: include it
// only from protocol/*.cc, never from a public header (it exposes FlatBuffers
// types).

#ifndef TALLY_PROTOCOL_CODEC_INTERNAL_H_
#define TALLY_PROTOCOL_CODEC_INTERNAL_H_

#include <flatbuffers/flatbuffers.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/status.h"

namespace tally::codec_internal {

// A body ready for the Verifier: 8-byte aligned (copied into `storage` when
// the caller's was not) and within the size limits.
struct CheckedBody {
  Status status;
  const uint8_t* data = nullptr;
  size_t size = 0;
};
CheckedBody CheckBody(std::span<const uint8_t> body, size_t max_body,
                      std::string_view what, std::vector<uint64_t>* storage);

// Verifier options for a body of `size` bytes (docs/protocol.md, "Input
// handling").
flatbuffers::Verifier::Options VerifierOptions(size_t size);

// Copies byte and text fields out of a verified buffer, within a budget of
// bytes. A verified buffer may still point many items at one large vector;
// copying it once per item would turn a 1 MiB body into gigabytes. Past the
// budget every field reads as empty and exceeded() turns true; the caller
// then rejects the whole message.
class FieldReader {
 public:
  explicit FieldReader(size_t budget) : remaining_(budget) {}

  std::string Bytes(const flatbuffers::Vector<uint8_t>* v) {
    if (v == nullptr) return std::string();
    return Take(reinterpret_cast<const char*>(v->data()), v->size());
  }
  std::string Text(const flatbuffers::String* s) {
    if (s == nullptr) return std::string();
    return Take(s->data(), s->size());
  }
  bool exceeded() const { return exceeded_; }

 private:
  std::string Take(const char* data, size_t n) {
    if (n > remaining_) {
      exceeded_ = true;
      remaining_ = 0;
      return std::string();
    }
    remaining_ -= n;
    return std::string(data, n);
  }

  size_t remaining_;
  bool exceeded_ = false;
};

// The FieldReader budget for a body of `size` bytes (docs/protocol.md,
// "Input handling").
size_t DecodeBudget(size_t size);
// The error for a message whose fields exceeded the budget.
Status BudgetExceeded(std::string_view what, size_t size);

inline flatbuffers::Offset<flatbuffers::Vector<uint8_t>> BytesOf(
    flatbuffers::FlatBufferBuilder& fbb, std::string_view bytes) {
  return fbb.CreateVector(reinterpret_cast<const uint8_t*>(bytes.data()),
                          bytes.size());
}

// An empty string is left out (absent and "" decode alike).
inline flatbuffers::Offset<flatbuffers::String> TextOf(
    flatbuffers::FlatBufferBuilder& fbb, std::string_view text) {
  if (text.empty()) return 0;
  return fbb.CreateString(text.data(), text.size());
}

// Finishes `root` padded to a multiple of 8 bytes and copies it out.
template <typename T>
std::vector<uint8_t> FinishPadded(flatbuffers::FlatBufferBuilder& fbb,
                                  flatbuffers::Offset<T> root) {
  fbb.TrackMinAlign(8);
  fbb.Finish(root);
  return std::vector<uint8_t>(fbb.GetBufferPointer(),
                              fbb.GetBufferPointer() + fbb.GetSize());
}

}  // namespace tally::codec_internal

#endif  // TALLY_PROTOCOL_CODEC_INTERNAL_H_
