// tally-wal: checks, dumps and repairs a tallyd data directory's WAL offline
// (like redis-check-aof). It reads with the same code as tallyd's recovery
// (storage/wal_reader.h), so what it calls valid is what tallyd replays.
//
//   tally-wal check  DATA_DIR [--json]
//   tally-wal dump   DATA_DIR [--json] [--from LSN] [--limit N]
//   tally-wal repair DATA_DIR [--yes]
//   tally-wal restore SNAPSHOT_FILE NEW_DATA_DIR
//
// Exit codes: 0 the log is clean; 1 torn tail (tallyd's default recovery
// truncates it); 2 corruption (tallyd refuses to start; `repair` or
// --recovery=point-in-time); 64 usage; 74 I/O error. `repair` exits 0 once
// the directory is clean, 1 when the operator declined.

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>

#include "storage/file_system.h"
#include "storage/recovery.h"
#include "storage/restore.h"
#include "storage/snapshot.h"
#include "storage/wal_reader.h"
#include "storage/wal_record.h"

namespace {

using tally::Status;
namespace wal = tally::wal;
using json = nlohmann::json;

constexpr int kExitClean = 0;
constexpr int kExitTorn = 1;
constexpr int kExitCorrupt = 2;
constexpr int kExitUsage = 64;
constexpr int kExitIo = 74;

const char* EndName(wal::LogEnd end) {
  switch (end) {
    case wal::LogEnd::kClean:
      return "clean";
    case wal::LogEnd::kTornTail:
      return "torn_tail";
    case wal::LogEnd::kCorrupt:
      return "corrupt";
  }
  return "?";
}

int ExitFor(wal::LogEnd end) {
  switch (end) {
    case wal::LogEnd::kClean:
      return kExitClean;
    case wal::LogEnd::kTornTail:
      return kExitTorn;
    case wal::LogEnd::kCorrupt:
      return kExitCorrupt;
  }
  return kExitCorrupt;
}

// Keys and members are binary: printable ASCII as is, the rest as \xHH.
std::string Escape(std::string_view bytes) {
  std::string out;
  for (unsigned char c : bytes) {
    if (c >= 0x20 && c < 0x7F && c != '\\' && c != '"') {
      out += static_cast<char>(c);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02X", c);
      out += buf;
    }
  }
  return out;
}

const char* TypeName(uint8_t type) {
  switch (static_cast<wal::RecordType>(type)) {
    case wal::RecordType::kAddBatch:
      return "add";
    case wal::RecordType::kDelete:
      return "delete";
    case wal::RecordType::kSweep:
      return "sweep";
    case wal::RecordType::kPolicies:
      return "policies";
  }
  return "unknown";
}

json RecordJson(const wal::RecordHeader& h, std::string_view payload) {
  json r = {{"lsn", h.lsn},
            {"time_ms", h.time_ms},
            {"type", TypeName(h.type)},
            {"bytes", wal::kRecordHeaderSize + payload.size()}};
  switch (static_cast<wal::RecordType>(h.type)) {
    case wal::RecordType::kAddBatch: {
      std::vector<wal::AddOp> ops;
      if (Status s = wal::DecodeAddBatch(payload, &ops); !s.ok()) {
        r["error"] = std::string(s.message());
        break;
      }
      json items = json::array();
      for (const wal::AddOp& op : ops) {
        json item = {{"key", Escape(op.key)},
                     {"count", op.count},
                     {"amount", op.amount}};
        if (op.time_ms != tally::kNow) item["time_ms"] = op.time_ms;
        if (op.has_member) item["member"] = Escape(op.member);
        if (op.has_id) item["id"] = Escape(op.id);
        items.push_back(std::move(item));
      }
      r["items"] = std::move(items);
      break;
    }
    case wal::RecordType::kDelete: {
      std::vector<std::string_view> keys;
      if (Status s = wal::DecodeDelete(payload, &keys); !s.ok()) {
        r["error"] = std::string(s.message());
        break;
      }
      json k = json::array();
      for (std::string_view key : keys) k.push_back(Escape(key));
      r["keys"] = std::move(k);
      break;
    }
    case wal::RecordType::kSweep: {
      uint32_t first = 0, count = 0;
      if (Status s = wal::DecodeSweep(payload, &first, &count); s.ok()) {
        r["first_shard"] = first;
        r["shards"] = count;
      }
      break;
    }
    case wal::RecordType::kPolicies: {
      tally::PolicySet set;
      if (Status s = wal::DecodePolicies(payload, &set); !s.ok()) {
        r["error"] = std::string(s.message());
        break;
      }
      json policies = json::array();
      for (const tally::Policy* p : set.All()) {
        policies.push_back({{"name", Escape(p->name)},
                            {"prefix", Escape(p->prefix)},
                            {"tiers", tally::FormatTiers(p->tiers)}});
      }
      r["policies"] = std::move(policies);
      break;
    }
  }
  return r;
}

std::string RecordText(const json& r) {
  std::string out = "lsn=" + std::to_string(r["lsn"].get<uint64_t>()) +
                    " time_ms=" + std::to_string(r["time_ms"].get<int64_t>()) +
                    " " + r["type"].get<std::string>();
  if (r.contains("items")) {
    for (const json& item : r["items"]) {
      out += " [key=" + item["key"].get<std::string>() +
             " count=" + std::to_string(item["count"].get<int64_t>()) +
             " amount=" + std::to_string(item["amount"].get<int64_t>());
      if (item.contains("time_ms")) {
        out += " ts=" + std::to_string(item["time_ms"].get<int64_t>());
      }
      if (item.contains("member")) {
        out += " member=" + item["member"].get<std::string>();
      }
      if (item.contains("id")) out += " id=" + item["id"].get<std::string>();
      out += "]";
    }
  }
  if (r.contains("keys")) {
    for (const json& key : r["keys"]) out += " " + key.get<std::string>();
  }
  if (r.contains("first_shard")) {
    out += " shards=" + std::to_string(r["first_shard"].get<uint32_t>()) + "+" +
           std::to_string(r["shards"].get<uint32_t>());
  }
  if (r.contains("policies")) {
    for (const json& p : r["policies"]) {
      out += " [" + p["name"].get<std::string>() + " prefix=\"" +
             p["prefix"].get<std::string>() + "\" " +
             p["tiers"].get<std::string>() + "]";
    }
  }
  if (r.contains("error")) out += " ERROR " + r["error"].get<std::string>();
  return out;
}

json ReportJson(const std::string& data_dir, const wal::ReadReport& rep) {
  json j = {{"data_dir", data_dir},
            {"status", EndName(rep.end)},
            {"segments", rep.segments},
            {"records", rep.records},
            {"first_lsn", rep.first_lsn},
            {"last_lsn", rep.last_lsn},
            {"bytes", rep.bytes},
            {"valid_up_to",
             rep.end_segment.empty()
                 ? std::string()
                 : rep.end_segment + ":" + std::to_string(rep.end_offset)}};
  if (rep.end != wal::LogEnd::kClean) {
    j["reason"] = rep.reason;
    j["discarded_bytes"] = rep.discarded_bytes;
    j["discarded_records"] = rep.discarded_records;
    j["later_segments"] = rep.later_segments;
  }
  // Snapshots, each verified in full.
  tally::FileSystem* fs = tally::PosixFileSystem();
  const std::string snap_dir = tally::SnapshotDir(data_dir);
  json snaps = json::array();
  if (auto list = tally::snapshot::List(fs, snap_dir); list.ok()) {
    for (const auto& f : *list) {
      auto snap = tally::snapshot::Read(fs, tally::JoinPath(snap_dir, f.name));
      json s = {{"file", f.name}, {"lsn", f.lsn}, {"valid", snap.ok()}};
      if (!snap.ok()) s["error"] = std::string(snap.status().message());
      snaps.push_back(std::move(s));
    }
  }
  j["snapshots"] = std::move(snaps);
  return j;
}

void PrintReport(const json& j) {
  std::printf("data_dir: %s\n", j["data_dir"].get<std::string>().c_str());
  std::printf("status: %s\n", j["status"].get<std::string>().c_str());
  std::printf(
      "segments: %llu\nrecords: %llu\nfirst_lsn: %llu\nlast_lsn: %llu\n",
      static_cast<unsigned long long>(j["segments"].get<uint64_t>()),
      static_cast<unsigned long long>(j["records"].get<uint64_t>()),
      static_cast<unsigned long long>(j["first_lsn"].get<uint64_t>()),
      static_cast<unsigned long long>(j["last_lsn"].get<uint64_t>()));
  std::printf("valid_up_to=%s\n", j["valid_up_to"].get<std::string>().c_str());
  if (j.contains("reason")) {
    std::printf("reason: %s\n", j["reason"].get<std::string>().c_str());
    std::printf(
        "after it: %llu bytes, %llu valid-looking records, %zu later "
        "segments\n",
        static_cast<unsigned long long>(j["discarded_bytes"].get<uint64_t>()),
        static_cast<unsigned long long>(j["discarded_records"].get<uint64_t>()),
        j["later_segments"].size());
  }
  for (const json& s : j["snapshots"]) {
    std::printf(
        "snapshot %s lsn=%llu %s%s\n", s["file"].get<std::string>().c_str(),
        static_cast<unsigned long long>(s["lsn"].get<uint64_t>()),
        s["valid"].get<bool>() ? "valid" : "INVALID: ",
        s.contains("error") ? s["error"].get<std::string>().c_str() : "");
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "tally-wal: check, dump and repair a tallyd data directory's WAL "
      "offline (stop tallyd first)"};
  app.set_version_flag("--version", "tally-wal " TALLY_VERSION);
  app.require_subcommand(1);
  std::string data_dir;
  bool as_json = false;
  bool yes = false;
  uint64_t from_lsn = 0;
  uint64_t limit = 0;
  CLI::App* check = app.add_subcommand("check",
                                       "validate every segment; exit 0 clean, "
                                       "1 torn tail, 2 corruption");
  CLI::App* dump = app.add_subcommand("dump", "print the valid records");
  CLI::App* repair =
      app.add_subcommand("repair",
                         "move everything after the last valid record into "
                         "DATA_DIR/wal-discarded-<LSN>/ and cut the log there");
  for (CLI::App* sub : {check, dump, repair}) {
    sub->add_option("data_dir", data_dir, "tallyd's --data_dir")->required();
  }
  check->add_flag("--json", as_json, "one JSON object");
  dump->add_flag("--json", as_json, "one JSON object per record");
  dump->add_option("--from", from_lsn, "first LSN to print");
  dump->add_option("--limit", limit, "print at most this many (0: all)");
  repair->add_flag("-y,--yes", yes, "do not ask for confirmation");
  CLI::App* restore = app.add_subcommand(
      "restore",
      "make a new data directory from a backed-up snapshot file (from "
      "SAVE): the snapshot plus an empty WAL that continues after it");
  std::string snapshot_file;
  uint32_t shard_bits = 8;
  restore->add_option("snapshot", snapshot_file, "a .snap file")->required();
  restore
      ->add_option("data_dir", data_dir,
                   "the new --data_dir (must not exist, or be empty)")
      ->required();
  restore->add_option("--shard_bits", shard_bits,
                      "tallyd's shard count, as a power of two (default 8)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : kExitUsage;
  }

  tally::FileSystem* fs = tally::PosixFileSystem();
  if (restore->parsed()) {
    tally::Result<tally::RestoreReport> r =
        tally::RestoreSnapshot(fs, snapshot_file, data_dir, shard_bits);
    if (!r.ok()) {
      std::fprintf(stderr, "tally-wal: %s\n", r.status().ToString().c_str());
      return r.status().code() == tally::Code::kCorruption ? kExitCorrupt
                                                           : kExitIo;
    }
    std::printf(
        "restored %s (LSN %llu, %llu bytes) into %s; start tallyd with "
        "--data_dir=%s\n",
        snapshot_file.c_str(), static_cast<unsigned long long>(r->lsn),
        static_cast<unsigned long long>(r->bytes), data_dir.c_str(),
        data_dir.c_str());
    return kExitClean;
  }
  const std::string wal_dir = tally::WalDir(data_dir);
  if (!fs->Exists(data_dir)) {
    std::fprintf(stderr, "tally-wal: %s does not exist\n", data_dir.c_str());
    return kExitIo;
  }

  uint64_t printed = 0;
  wal::RecordVisitor visit;
  if (dump->parsed()) {
    visit = [&](const wal::RecordHeader& h,
                std::string_view payload) -> Status {
      if (h.lsn < from_lsn || (limit != 0 && printed >= limit)) {
        return Status::Ok();
      }
      ++printed;
      const json r = RecordJson(h, payload);
      std::printf("%s\n", as_json ? r.dump().c_str() : RecordText(r).c_str());
      return Status::Ok();
    };
  }
  // Read from the newest valid snapshot on, as tallyd's recovery does: the
  // segments below it were deleted on purpose, and are not "missing".
  wal::ReadOptions read_options;
  if (auto snaps = tally::snapshot::List(fs, tally::SnapshotDir(data_dir));
      snaps.ok()) {
    for (auto it = snaps->rbegin(); it != snaps->rend(); ++it) {
      const std::string path =
          tally::JoinPath(tally::SnapshotDir(data_dir), it->name);
      if (tally::snapshot::Read(fs, path).ok()) {
        read_options.need_from_lsn = it->lsn;
        if (!dump->parsed()) read_options.after_lsn = it->lsn;
        break;
      }
    }
  }
  tally::Result<wal::ReadReport> read =
      wal::ReadWal(fs, wal_dir, read_options, visit);
  if (!read.ok()) {
    std::fprintf(stderr, "tally-wal: %s\n", read.status().ToString().c_str());
    return kExitIo;
  }
  const wal::ReadReport& rep = *read;

  if (check->parsed()) {
    const json j = ReportJson(data_dir, rep);
    if (as_json) {
      std::printf("%s\n", j.dump().c_str());
    } else {
      PrintReport(j);
    }
    return ExitFor(rep.end);
  }
  if (dump->parsed()) {
    if (rep.end != wal::LogEnd::kClean) {
      std::fprintf(
          stderr, "tally-wal: the log ends early (%s): %s at %s\n",
          EndName(rep.end), rep.reason.c_str(),
          wal::DescribePosition(rep.end_segment, rep.end_offset).c_str());
    }
    return ExitFor(rep.end);
  }
  // repair
  PrintReport(ReportJson(data_dir, rep));
  if (rep.end == wal::LogEnd::kClean) {
    std::printf("nothing to repair\n");
    return kExitClean;
  }
  std::printf(
      "\nrepair keeps records up to LSN %llu and moves %llu bytes (%llu "
      "valid-looking records) after %s aside.\n",
      static_cast<unsigned long long>(rep.last_lsn),
      static_cast<unsigned long long>(rep.discarded_bytes),
      static_cast<unsigned long long>(rep.discarded_records),
      wal::DescribePosition(rep.end_segment, rep.end_offset).c_str());
  if (!yes) {
    std::printf("Continue? [y/N]: ");
    std::fflush(stdout);
    std::string answer;
    if (!std::getline(std::cin, answer) ||
        (answer != "y" && answer != "Y" && answer != "yes")) {
      std::printf("not repaired\n");
      return 1;
    }
  }
  std::string moved_to;
  if (Status s = tally::DiscardWalTail(fs, data_dir, rep, &moved_to); !s.ok()) {
    std::fprintf(stderr, "tally-wal: repair failed: %s\n",
                 s.ToString().c_str());
    return kExitIo;
  }
  std::printf("repaired: the log now ends at LSN %llu; the rest is in %s\n",
              static_cast<unsigned long long>(rep.last_lsn), moved_to.c_str());
  return kExitClean;
}
