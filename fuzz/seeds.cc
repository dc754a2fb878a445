#include "fuzz/seeds.h"

#include <chrono>
#include <cstdio>
#include <limits>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "fuzz/mem_file_system.h"
#include "fuzz/targets.h"
#include "protocol/codec.h"
#include "protocol/frame.h"
#include "server/policy_reload.h"
#include "server/service.h"
#include "storage/journal.h"
#include "storage/recovery.h"
#include "storage/snapshot.h"
#include "storage/wal_format.h"

namespace tally::fuzz {
namespace {

using proto::AddItem;
using proto::QueryItem;
using proto::Request;

constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
constexpr int64_t kMin = std::numeric_limits<int64_t>::min();

AddItem Add(std::string key, int64_t amount, int64_t time_ms = 0,
            std::optional<std::string> member = std::nullopt,
            std::optional<std::string> id = std::nullopt, int64_t count = 1) {
  AddItem item;
  item.key = std::move(key);
  item.amount = amount;
  item.time_ms = time_ms;
  item.member = std::move(member);
  item.id = std::move(id);
  item.count = count;
  return item;
}

Request Req(decltype(Request::body) body, uint32_t deadline_ms = 0,
            bool wait_durable = false) {
  Request r;
  r.body = std::move(body);
  r.deadline_ms = deadline_ms;
  r.wait_durable = wait_durable;
  return r;
}

// Requests of every operation, valid ones and edge values.
std::vector<std::pair<std::string, Request>> Requests() {
  const int64_t now = kFuzzNowMs;
  std::vector<std::pair<std::string, Request>> out;
  out.emplace_back("hello", Req(proto::HelloRequest{"fuzz", kProtocolVersion}));
  out.emplace_back("hello_v0", Req(proto::HelloRequest{"", 0}));
  out.emplace_back("hello_v99", Req(proto::HelloRequest{"x", 99}));
  out.emplace_back("ping", Req(proto::PingRequest{}));
  out.emplace_back("ping_deadline", Req(proto::PingRequest{}, 1));
  proto::AddRequest add;
  add.items = {Add("user:1", 100), Add("s:card", 250, now - 1000, "m1", "id1"),
               Add("s:card", -5, now, "m2"), Add("s:card", 7, now + 2000, ""),
               Add("user:1", 1, now - 3600'000, std::nullopt, "id2", 3)};
  out.emplace_back("add", Req(add, 0, true));
  proto::AddRequest edges;
  edges.items = {Add("", 1),
                 Add(std::string(kMaxKeyBytes, 'k'), kMax),
                 Add(std::string(kMaxKeyBytes + 1, 'k'), 1),
                 Add("user:1", kMax),
                 Add("user:1", kMax),  // overflows the sum
                 Add("user:2", kMin),
                 Add("user:3", 1, -1),
                 Add("user:3", 1, now + 3600'000),
                 Add("user:3", 1, now - 400 * 86'400'000LL),
                 Add("user:3", 1, kMax),
                 Add("user:4", 1, 0, std::string(kMaxMemberBytes + 1, 'm')),
                 Add("user:4", 1, 0, std::nullopt, std::string(""), 1),
                 Add("user:4", 1, 0, std::nullopt, "id1"),  // id conflict
                 Add("user:5", 1, 0, std::nullopt, std::nullopt, 0),
                 Add("user:5", 1, 0, std::nullopt, std::nullopt, kMax)};
  out.emplace_back("add_edges", Req(edges));
  proto::QueryRequest query;
  query.items = {QueryItem::Last("user:1", 60'000),
                 QueryItem::Last("s:card", 3'600'000, 63, now),
                 QueryItem::Between("s:card", now - 10'000, now + 1),
                 QueryItem::Last("", 1),
                 QueryItem::Last("user:1", 0),
                 QueryItem::Last("user:1", kMax, 0, kMax),
                 QueryItem::Between("user:1", 5, 5),
                 QueryItem::Between("user:1", 0, kMax, 1u << 31),
                 QueryItem::Last("absent", 1000, 32)};
  out.emplace_back("query", Req(query));
  proto::AddAndQueryRequest aq;
  aq.adds = {Add("s:ip", 10, 0, "a"), Add("s:ip", 20, 0, "b")};
  aq.queries = {QueryItem::Last("s:ip", 60'000),
                QueryItem::Last("s:ip", 1000, 32)};
  out.emplace_back("add_and_query", Req(aq, 1000));
  out.emplace_back("range", Req(proto::RangeRequest{"user:1", now - 3'600'000,
                                                    now + 1, 60'000, 0}));
  out.emplace_back("range_edges",
                   Req(proto::RangeRequest{"user:1", 0, kMax, 1, 63}));
  out.emplace_back("range_bad",
                   Req(proto::RangeRequest{"user:1", 10, 5, 0, 0}));
  out.emplace_back("inspect", Req(proto::InspectRequest{"s:card"}));
  out.emplace_back("inspect_absent", Req(proto::InspectRequest{"nope"}));
  out.emplace_back("scan", Req(proto::ScanRequest{0, "user:*", 10}));
  out.emplace_back("scan_edges",
                   Req(proto::ScanRequest{~uint64_t{0}, "[a-", 1u << 31}));
  out.emplace_back("delete", Req(proto::DeleteRequest{{"user:2", "", "gone"}}));
  out.emplace_back("info", Req(proto::InfoRequest{""}));
  out.emplace_back("info_debug", Req(proto::InfoRequest{"debug"}));
  out.emplace_back("info_bad", Req(proto::InfoRequest{"bogus"}));
  out.emplace_back("admin_docs", Req(proto::AdminRequest{{"COMMAND", "DOCS"}}));
  out.emplace_back("admin_dbsize", Req(proto::AdminRequest{{"dbsize"}}));
  out.emplace_back("admin_bad", Req(proto::AdminRequest{{"FLY", "x"}}));
  return out;
}

std::string Bytes(const std::vector<uint8_t>& v) {
  return std::string(v.begin(), v.end());
}

std::string RequestFrame(const Request& request, uint64_t id) {
  std::vector<uint8_t> frame;
  AppendFrame(&frame, FrameKind::kRequest, id, EncodeRequest(request));
  return Bytes(frame);
}

// Zero fill after the last record is noise for the fuzzer: keep one zero
// record header (the clean end marker) and drop the rest.
std::string TrimZeros(std::string file) {
  size_t end = file.find_last_not_of('\0');
  end = end == std::string::npos ? 0 : end + 1;
  file.resize(std::min(file.size(), end + wal::kRecordHeaderSize));
  return file;
}

// Runs the requests through a Service on a real Journal (WAL writer and
// snapshot writer) on an in-memory file system; collects the response
// frames, the WAL segments and the snapshots.
void RunService(const std::vector<std::pair<std::string, Request>>& requests,
                std::vector<Seed>* seeds) {
  const std::string data_dir = "/seed";
  ManualClock clock(kFuzzNowMs);
  MemFileSystem fs;
  RecoveryOptions ro;
  ro.fs = &fs;
  ro.data_dir = data_dir;
  ro.engine.clock = &clock;
  ro.engine.policies = Policies();
  ro.engine.hash_seed = 0x5EED;
  ro.engine.shard_bits = 2;
  ro.engine.distinct_exact_limit = 16;
  ro.dedupe.shard_bits = 1;
  Result<Recovered> recovered = Recover(ro);
  if (!recovered.ok()) {
    std::fprintf(stderr, "seeds: recover: %s\n",
                 recovered.status().ToString().c_str());
    std::abort();
  }
  JournalOptions jo;
  jo.fs = &fs;
  jo.data_dir = data_dir;
  jo.segment_bytes = 256 << 10;
  jo.sweep_interval_ms = 0;
  jo.clock = &clock;
  Journal journal(std::move(*recovered), jo);
  if (Status s = journal.Start(); !s.ok()) {
    std::fprintf(stderr, "seeds: journal: %s\n", s.ToString().c_str());
    std::abort();
  }
  Service service(&journal, &clock, ServiceOptions{});

  std::string all_responses;
  uint64_t id = 1;
  auto run = [&](const std::string& name, const Request& request) {
    proto::Response response = service.HandleSync(request, BootClock::now());
    std::vector<uint8_t> frame;
    AppendFrame(&frame, FrameKind::kResponse, id++, EncodeResponse(response));
    seeds->push_back({"response_decode", name, Bytes(frame)});
    all_responses += Bytes(frame);
  };
  for (const auto& [name, request] : requests) run(name, request);
  // Enough members on one key for sketches (distinct_exact_limit is 16).
  proto::AddRequest many;
  for (int i = 0; i < 64; ++i) {
    many.items.push_back(
        Add("s:wide", i, kFuzzNowMs - i * 500, "member-" + std::to_string(i)));
  }
  run("add_many", Req(many));
  if (Status s = journal.SnapshotNow(); !s.ok()) {
    std::fprintf(stderr, "seeds: snapshot: %s\n", s.ToString().c_str());
    std::abort();
  }
  clock.Advance(2000);
  run("add_after_snapshot", Req(proto::AddRequest{{Add("user:9", 9)}}));
  run("delete_after_snapshot", Req(proto::DeleteRequest{{"user:1"}}));
  // A policy reload: a kPolicies record in the WAL after the snapshot.
  {
    Policy def = Policies().default_policy();
    def.max_lateness_ms += 60'000;
    std::vector<Policy> prefixed;
    for (const Policy* p : Policies().All()) {
      if (!p->prefix.empty()) prefixed.push_back(*p);
    }
    Result<PolicySet> next = PolicySet::Create(def, prefixed);
    Status s = next.ok() ? ApplyPolicies(&journal, *next) : next.status();
    if (!s.ok()) {
      std::fprintf(stderr, "seeds: policies: %s\n", s.ToString().c_str());
      std::abort();
    }
  }
  journal.Stop();
  seeds->push_back({"response_decode", "all", all_responses});
  // An error frame for the whole connection (request id 0).
  std::vector<uint8_t> error;
  AppendFrame(&error, FrameKind::kResponse, 0,
              EncodeResponse(proto::Response::Error(
                  Status(Code::kProtocolError, "bad magic"))));
  seeds->push_back({"response_decode", "connection_error", Bytes(error)});

  int segments = 0, snapshots = 0;
  for (const auto& [path, bytes] : fs.Files()) {
    if (path.ends_with(wal::kSegmentSuffix)) {
      seeds->push_back({"wal_reader", "segment" + std::to_string(segments++),
                        TrimZeros(bytes)});
    } else if (path.ends_with(snapshot::kSuffix)) {
      seeds->push_back(
          {"snapshot_reader", "snapshot" + std::to_string(snapshots++), bytes});
    }
  }
  if (segments == 0 || snapshots == 0) {
    std::fprintf(stderr, "seeds: expected WAL segments and snapshots\n");
    std::abort();
  }
}

}  // namespace

std::vector<Seed> GenerateSeeds() {
  std::vector<Seed> seeds;
  const auto requests = Requests();
  std::string stream;
  uint64_t id = 1;
  for (const auto& [name, request] : requests) {
    seeds.push_back({"request_frames", name, RequestFrame(request, id)});
    stream += RequestFrame(request, id++);
  }
  seeds.push_back({"request_frames", "all", stream});
  // A valid frame followed by garbage (the desync case of P4).
  seeds.push_back({"request_frames", "frame_then_garbage",
                   RequestFrame(Req(proto::PingRequest{}), 7) + "\x00garbage"});
  RunService(requests, &seeds);
  return seeds;
}

std::string FrameDictionary() {
  // libFuzzer dictionary syntax: name="bytes" with \xNN escapes.
  return R"(# tally frames: header fields (docs/protocol.md, "Frames")
magic="TALY"
header_v1_request="TALY\x01\x01\x00\x00"
header_v1_response="TALY\x01\x02\x00\x00"
len_max="\x00\x00\x10\x00"
len_max_plus_1="\x01\x00\x10\x00"
len_huge="\xff\xff\xff\xff"
u64_max="\xff\xff\xff\xff\xff\xff\xff\xff"
i64_min="\x00\x00\x00\x00\x00\x00\x00\x80"
i64_max="\xff\xff\xff\xff\xff\xff\xff\x7f"
# FlatBuffers union tags: Op values 1..10
op_hello="\x01"
op_ping="\x02"
op_add="\x03"
op_query="\x04"
op_add_and_query="\x05"
op_range="\x06"
op_inspect="\x07"
op_scan="\x08"
op_delete="\x09"
op_info="\x0a"
# key prefixes of the fuzz policies
key_small="s:"
key_user="user:"
info_debug="debug"
glob="*"
)";
}

}  // namespace tally::fuzz
