// HyperLogLog: a fixed-size sketch that estimates the number of distinct
// members added to it (a set's cardinality) in 16 KiB, whatever the
// cardinality.
//
// The sketch is dense: 2^14 one-byte registers. Callers feed it a well-mixed
// 64-bit hash of each member (tally uses XXH3); the sketch does no hashing of
// its own, so all sketches that are to be merged or compared must be fed the
// same hash function with the same seed. The top kPrecision bits of a hash
// select a register and the register keeps the maximum "rank" (position of
// the first one bit in the remaining 50 bits) seen. Adding a member is
// idempotent, and Merge() of two sketches gives exactly the sketch of the
// union of their members.
//
// Estimate() uses Otmar Ertl's improved raw estimator ("New cardinality
// estimation algorithms for HyperLogLog sketches", 2017), which is unbiased
// from 0 to very large cardinalities without switching to linear counting;
// its relative standard error is about kRelativeStandardError.
//
// Thread safety: not thread-safe. Concurrent calls on one sketch need
// external synchronization, except that several threads may call const
// methods at the same time.

#ifndef TALLY_STORAGE_HYPERLOGLOG_H_
#define TALLY_STORAGE_HYPERLOGLOG_H_

#include <array>
#include <cstddef>
#include <cstdint>

namespace tally {

// Dense HyperLogLog with 2^14 one-byte registers (16 KiB), fed 64-bit hashes.
class HyperLogLog {
 public:
  static constexpr int kPrecision = 14;
  static constexpr size_t kRegisters = size_t{1} << kPrecision;
  // 1.04 / sqrt(2^14) = 0.8125 %.
  static constexpr double kRelativeStandardError = 1.04 / 128.0;

  // All registers zero: the sketch of the empty set.
  HyperLogLog();

  // Records a member given its well-mixed 64-bit hash (e.g. XXH3). The
  // register chosen by the top kPrecision bits becomes the max of its value
  // and 1 + the number of leading zeros of the other 50 bits (51 if those
  // are all zero).
  void Add(uint64_t hash);

  // Makes this sketch the sketch of the union of both sets (register-wise
  // max). `other` may be *this.
  void Merge(const HyperLogLog& other);

  // Estimated number of distinct members added; >= 0, exactly 0 when empty.
  // +infinity only if every register holds the maximum rank, which takes
  // on the order of 2^64 distinct hashes.
  double Estimate() const;

  // Resets to the empty sketch.
  void Clear();

  // True when no register is set, i.e. nothing has been added or merged in.
  bool empty() const;

  // The kRegisters raw register values, each in [0, 51].
  const uint8_t* registers() const { return registers_.data(); }

  // In-memory size of a sketch.
  static constexpr size_t bytes() { return sizeof(HyperLogLog); }

 private:
  std::array<uint8_t, kRegisters> registers_;
};

}  // namespace tally

#endif  // TALLY_STORAGE_HYPERLOGLOG_H_
