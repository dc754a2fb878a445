// Messages: plain C++ mirrors of the wire schema (protocol/tally.fbs), the
// types the server, the client library and tools work with. protocol/codec.h
// converts them to and from FlatBuffers; nothing outside protocol/ sees a
// FlatBuffers type. Field meanings, units and defaults are those of
// docs/protocol.md; a default here is the schema's default, i.e. what an
// absent field decodes to.
//
// Keys, members, ids and patterns are std::string holding arbitrary bytes
// (NUL included). Per-item results carry their own code and message: a bad
// item fails only itself.
//
// Thread safety: plain values; distinct objects may be used from different
// threads freely.

#ifndef TALLY_PROTOCOL_MESSAGES_H_
#define TALLY_PROTOCOL_MESSAGES_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "protocol/limits.h"
#include "protocol/status.h"

namespace tally::proto {

// DO NOT CHANGE: wire format, see docs/protocol.md
// The operation of a request; equal to the number of its RequestBody (and
// ResponseBody) union member in tally.fbs. Appended only.
enum class Op : uint8_t {
  kNone = 0,  // no body: never valid in a request; an error response's body
  kHello = 1,
  kPing = 2,
  kAdd = 3,
  kQuery = 4,
  kAddAndQuery = 5,
  kRange = 6,
  kInspect = 7,
  kScan = 8,
  kDelete = 9,
  kInfo = 10,
  kAuth = 11,
  kAdmin = 12,
};

// Lower-case name, e.g. "add_and_query"; "unknown" for other values.
std::string_view OpName(Op op);

// Aggregate bits of QueryItem::aggs and RangeRequest::aggs (the engine's).
// DO NOT CHANGE: wire format, see docs/protocol.md
inline constexpr uint32_t kAggCountBit = 1;
inline constexpr uint32_t kAggSumBit = 2;
inline constexpr uint32_t kAggMinBit = 4;
inline constexpr uint32_t kAggMaxBit = 8;
inline constexpr uint32_t kAggAvgBit = 16;
inline constexpr uint32_t kAggDistinctBit = 32;
inline constexpr uint32_t kAggAllBits = 63;

// ------------------------------------------------------------------ requests

struct HelloRequest {
  std::string client_name{};
  uint32_t protocol_version = kProtocolVersion;  // highest the client speaks
  bool operator==(const HelloRequest&) const = default;
};

struct PingRequest {
  bool operator==(const PingRequest&) const = default;
};

struct AddItem {
  std::string key{};                    // 1..kMaxKeyBytes bytes
  int64_t time_ms = 0;                  // ms since epoch; 0 = now
  int64_t count = 1;                    // >= 1
  int64_t amount = 0;                   // minor units; may be negative
  std::optional<std::string> member{};  // nullopt = none; "" is a member
  std::optional<std::string> id{};      // idempotency id; nullopt = none
  bool operator==(const AddItem&) const = default;
};

struct AddRequest {
  std::vector<AddItem> items{};
  bool operator==(const AddRequest&) const = default;
};

// A `last last_ms ms ending at at_ms` window when last_ms != 0 (from_ms and
// to_ms then 0), else [from_ms, to_ms).
struct QueryItem {
  std::string key{};
  int64_t last_ms = 0;
  int64_t at_ms = 0;  // inclusive end of a `last` window; 0 = now
  int64_t from_ms = 0;
  int64_t to_ms = 0;
  uint32_t aggs = 0;  // kAgg*Bit mask; 0 = all the key's policy tracks

  static QueryItem Last(std::string key, int64_t last_ms, uint32_t aggs = 0,
                        int64_t at_ms = 0) {
    return {.key = std::move(key),
            .last_ms = last_ms,
            .at_ms = at_ms,
            .from_ms = 0,
            .to_ms = 0,
            .aggs = aggs};
  }
  static QueryItem Between(std::string key, int64_t from_ms, int64_t to_ms,
                           uint32_t aggs = 0) {
    return {.key = std::move(key),
            .last_ms = 0,
            .at_ms = 0,
            .from_ms = from_ms,
            .to_ms = to_ms,
            .aggs = aggs};
  }
  bool operator==(const QueryItem&) const = default;
};

struct QueryRequest {
  std::vector<QueryItem> items{};
  bool operator==(const QueryRequest&) const = default;
};

// Every add is applied, then every query answered on a state including them.
struct AddAndQueryRequest {
  std::vector<AddItem> adds{};
  std::vector<QueryItem> queries{};
  bool operator==(const AddAndQueryRequest&) const = default;
};

struct RangeRequest {
  std::string key{};
  int64_t from_ms = 0;  // [from_ms, to_ms), one point per step_ms
  int64_t to_ms = 0;
  int64_t step_ms = 0;
  uint32_t aggs = 0;
  bool operator==(const RangeRequest&) const = default;
};

struct InspectRequest {
  std::string key{};
  bool operator==(const InspectRequest&) const = default;
};

struct ScanRequest {
  uint64_t cursor = 0;    // 0 starts a scan
  std::string pattern{};  // fnmatch(3) glob over key bytes; "" = all
  uint32_t count = 0;     // keys per page (a hint); 0 = the server's default
  bool operator==(const ScanRequest&) const = default;
};

struct DeleteRequest {
  std::vector<std::string> keys{};
  bool operator==(const DeleteRequest&) const = default;
};

struct InfoRequest {
  std::string section{};  // "" = all sections
  bool operator==(const InfoRequest&) const = default;
};

struct AuthRequest {
  std::string token{};  // the secret; never logged
  bool operator==(const AuthRequest&) const = default;
};

// An operator command (docs/protocol.md, "Admin commands"): args[0] is the
// command name, matched case-insensitively; the rest are its arguments.
struct AdminRequest {
  std::vector<std::string> args{};
  bool operator==(const AdminRequest&) const = default;
};

struct Request {
  uint32_t deadline_ms = 0;   // budget from when the server reads it; 0 = none
  bool wait_durable = false;  // reply once the writes are fsync'd
  // The alternative's index is its Op: keep the order of Op.
  std::variant<std::monostate, HelloRequest, PingRequest, AddRequest,
               QueryRequest, AddAndQueryRequest, RangeRequest, InspectRequest,
               ScanRequest, DeleteRequest, InfoRequest, AuthRequest,
               AdminRequest>
      body{};

  Op op() const { return static_cast<Op>(body.index()); }
  bool operator==(const Request&) const = default;
};

// ----------------------------------------------------------------- responses

// An answer and its envelope (the engine's Answer).
struct Aggregates {
  int64_t count = 0;
  int64_t sum = 0;
  int64_t min = 0;  // 0 when count == 0
  int64_t max = 0;
  double avg = 0;  // sum / count; 0 when count == 0
  uint64_t distinct = 0;
  bool exact = true;            // false when `distinct` is an estimate
  double distinct_error = 0;    // relative standard error when !exact
  int64_t covered_from_ms = 0;  // [covered_from, covered_to): what was summed
  int64_t covered_to_ms = 0;
  int64_t resolution_ms = 0;  // bucket width at the far edge
  bool operator==(const Aggregates&) const = default;
};

struct HelloResult {
  std::string server_name{};
  std::string server_version{};
  uint32_t protocol_version = 0;  // the version both sides now speak
  int64_t server_time_ms = 0;
  bool operator==(const HelloResult&) const = default;
};

struct PingResult {
  bool operator==(const PingResult&) const = default;
};

struct AddItemResult {
  Code code = Code::kOk;  // this item's outcome
  std::string message{};
  int64_t time_ms = 0;     // the event time applied
  bool duplicate = false;  // the id was seen before; nothing applied
  uint64_t lsn = 0;        // the add's WAL record; 0 = not logged
  bool operator==(const AddItemResult&) const = default;
};

struct AddResult {
  std::vector<AddItemResult> items{};  // one per request item, in order
  bool operator==(const AddResult&) const = default;
};

struct QueryItemResult {
  Code code = Code::kOk;
  std::string message{};
  Aggregates answer{};
  uint64_t lsn = 0;  // WAL position the answer was read at
  bool operator==(const QueryItemResult&) const = default;
};

struct QueryResult {
  std::vector<QueryItemResult> items{};
  bool operator==(const QueryResult&) const = default;
};

struct AddAndQueryResult {
  std::vector<AddItemResult> adds{};
  std::vector<QueryItemResult> queries{};
  bool operator==(const AddAndQueryResult&) const = default;
};

struct RangePoint {
  int64_t start_ms = 0;  // the step's requested start
  Aggregates answer{};
  bool operator==(const RangePoint&) const = default;
};

struct RangeResult {
  std::vector<RangePoint> points{};
  uint64_t lsn = 0;
  bool operator==(const RangeResult&) const = default;
};

struct TierInfo {
  int64_t resolution_ms = 0;
  int64_t retention_ms = 0;
  uint32_t buckets = 0;   // non-empty buckets held
  uint32_t sketches = 0;  // buckets whose distinct state is a sketch
  int64_t first_bucket_ms = 0;
  int64_t last_bucket_ms = 0;
  int64_t bytes = 0;
  bool operator==(const TierInfo&) const = default;
};

struct InspectResult {
  std::string key{};
  std::string policy{};
  bool track_distinct = false;
  int64_t max_lateness_ms = 0;
  int64_t max_skew_ms = 0;
  bool raw = false;  // events still kept raw (a young key)
  uint32_t raw_events = 0;
  std::vector<TierInfo> tiers{};
  int64_t bytes = 0;
  bool operator==(const InspectResult&) const = default;
};

struct ScanResult {
  uint64_t cursor = 0;  // pass back for the next page; 0 = done
  std::vector<std::string> keys{};
  bool operator==(const ScanResult&) const = default;
};

struct DeleteItemResult {
  Code code = Code::kOk;
  std::string message{};
  bool existed = false;
  bool operator==(const DeleteItemResult&) const = default;
};

struct DeleteResult {
  std::vector<DeleteItemResult> items{};
  bool operator==(const DeleteResult&) const = default;
};

struct InfoResult {
  std::string text{};
  bool operator==(const InfoResult&) const = default;
};

struct AuthResult {
  std::string token_id{};  // the token accepted (its id, not the secret)
  std::string role{};      // "reader", "writer" or "admin"
  bool operator==(const AuthResult&) const = default;
};

// An admin command's reply: a small tree shaped like a RESP reply, so the CLI
// can print it the way redis-cli does. Build it with the helpers below.
struct AdminReply {
  enum class Kind : uint8_t {
    kNil = 0,
    kStatus = 1,   // a short status word in `text`, e.g. "OK"
    kInteger = 2,  // `integer`
    kText = 3,     // `text`
    kArray = 4,    // `elements`
    kMap = 5,      // `elements` as alternating name, value
  };
  Kind kind = Kind::kNil;
  int64_t integer = 0;
  std::string text{};
  std::vector<AdminReply> elements{};

  static AdminReply Nil() { return {}; }
  static AdminReply StatusWord(std::string word) {
    return {.kind = Kind::kStatus, .text = std::move(word)};
  }
  static AdminReply Integer(int64_t value) {
    return {.kind = Kind::kInteger, .integer = value};
  }
  static AdminReply Text(std::string text) {
    return {.kind = Kind::kText, .text = std::move(text)};
  }
  static AdminReply Array(std::vector<AdminReply> elements = {}) {
    return {.kind = Kind::kArray, .elements = std::move(elements)};
  }
  // An empty map; add pairs with Put.
  static AdminReply Map() { return {.kind = Kind::kMap}; }
  // Appends a name/value pair to a map. REQUIRES: kind == kMap.
  AdminReply& Put(std::string name, AdminReply value) {
    elements.push_back(Text(std::move(name)));
    elements.push_back(std::move(value));
    return *this;
  }
  bool operator==(const AdminReply&) const = default;
};

struct AdminResult {
  AdminReply reply{};
  bool operator==(const AdminResult&) const = default;
};

struct Response {
  Code code = Code::kOk;  // whole-request outcome
  std::string message{};
  // monostate when code != kOk. The alternative's index is the Op answered.
  std::variant<std::monostate, HelloResult, PingResult, AddResult, QueryResult,
               AddAndQueryResult, RangeResult, InspectResult, ScanResult,
               DeleteResult, InfoResult, AuthResult, AdminResult>
      body{};

  // A whole-request error response. REQUIRES: !status.ok().
  static Response Error(const Status& status) {
    Response r;
    r.code = status.code();
    r.message = std::string(status.message());
    return r;
  }
  Status status() const { return Status(code, message); }
  Op op() const { return static_cast<Op>(body.index()); }
  bool operator==(const Response&) const = default;
};

}  // namespace tally::proto

#endif  // TALLY_PROTOCOL_MESSAGES_H_
