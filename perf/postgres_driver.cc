#include "perf/postgres_driver.h"

#include <libpq-fe.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <charconv>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <unordered_set>
#include <vector>

namespace tally::bench {

namespace {

// Parameter type OIDs (catalog/pg_type_d.h, a server header).
constexpr Oid kInt8Oid = 20;
constexpr Oid kTextOid = 25;

// The protocol allows 65,535 parameters per statement; a bigger batch is
// inserted in several statements (not one round trip, but W1 never does it).
constexpr size_t kMaxRowsPerInsert = 65'535 / 4;

// Room for one text parameter: "user:" + 20 digits, or an int64, and a NUL.
constexpr size_t kSlot = 32;

constexpr const char* kSchemaSql =
    "DROP TABLE IF EXISTS events;"
    "CREATE TABLE events(key text NOT NULL, ts bigint NOT NULL,"
    " amount bigint NOT NULL, member bigint NOT NULL);"
    "CREATE INDEX events_key_ts ON events(key, ts);";

// The decision statement. $1 = u's key; [$2, $3) = w60, [$4, $5) = w1h,
// [$6, $7) = w24h; $8 = u2's key; W2 adds [$9, $10) = w30d and its three
// counters. One index range scan over u's widest window (which holds the
// others), plus one over u2's w60.
std::string DecideSql(bool w2) {
  std::string sql = "SELECT";
  for (const char* w : {"$2 AND ts < $3", "$4 AND ts < $5", "$6 AND ts < $7"}) {
    const std::string f = std::string(" FILTER (WHERE ts >= ") + w + ")";
    sql += " count(*)" + f + ", coalesce(sum(amount)" + f +
           ", 0), count(DISTINCT member)" + f + ",";
  }
  sql +=
      " (SELECT count(*) FROM events WHERE key = $8 AND ts >= $2 AND ts < $3)";
  if (!w2) return sql + " FROM events WHERE key = $1 AND ts >= $6 AND ts < $7";
  return sql +
         ", count(*), coalesce(sum(amount), 0), count(DISTINCT member)"
         " FROM events WHERE key = $1 AND ts >= $9 AND ts < $10";
}
constexpr Oid kDecideTypes[] = {kTextOid, kInt8Oid, kInt8Oid, kInt8Oid,
                                kInt8Oid, kInt8Oid, kInt8Oid, kTextOid};
constexpr Oid kDecideW2Types[] = {kTextOid, kInt8Oid, kInt8Oid, kInt8Oid,
                                  kInt8Oid, kInt8Oid, kInt8Oid, kTextOid,
                                  kInt8Oid, kInt8Oid};

constexpr const char* kQuerySql =
    "SELECT count(*), coalesce(sum(amount), 0), count(DISTINCT member)"
    " FROM events WHERE key = $1 AND ts >= $2 AND ts < $3";
constexpr const char* kQueryDistinctSql =
    "SELECT count(DISTINCT member)"
    " FROM events WHERE key = $1 AND ts >= $2 AND ts < $3";
constexpr Oid kQueryTypes[] = {kTextOid, kInt8Oid, kInt8Oid};

struct ResultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
using ResultPtr = std::unique_ptr<PGresult, ResultDeleter>;

// "postgres: " and libpq's message on one line (libpq ends it with a newline
// and may continue it on indented lines).
std::string OneLine(const char* message) {
  std::string out = "postgres: ";
  bool space = true;
  for (const char* c = message; *c != '\0'; ++c) {
    const bool blank = *c == ' ' || *c == '\n' || *c == '\t' || *c == '\r';
    if (blank && space) continue;
    space = blank;
    out += blank ? ' ' : *c;
  }
  while (out.back() == ' ') out.pop_back();
  return out;
}

// Swallows NOTICEs (e.g. "table does not exist, skipping"), which libpq
// would otherwise print on stderr in the middle of the report.
void IgnoreNotice(void*, const char*) {}

PGconn* OpenConn(const std::string& conninfo, Status* status) {
  PGconn* conn = PQconnectdb(conninfo.c_str());
  if (conn == nullptr) {
    *status = Status(Code::kUnavailable, "postgres: out of memory");
    return nullptr;
  }
  if (PQstatus(conn) != CONNECTION_OK) {
    *status = Status(Code::kUnavailable, OneLine(PQerrorMessage(conn)));
    PQfinish(conn);
    return nullptr;
  }
  PQsetNoticeProcessor(conn, IgnoreNotice, nullptr);
  *status = Status::Ok();
  return conn;
}

// The status for a failed command: kUnavailable when the connection is gone,
// kInternal (with the server's message) when only the statement failed.
Status FailureStatus(PGconn* conn, const PGresult* result) {
  const char* message =
      result != nullptr ? PQresultErrorMessage(result) : PQerrorMessage(conn);
  const Code code =
      PQstatus(conn) == CONNECTION_OK ? Code::kInternal : Code::kUnavailable;
  return Status(code, OneLine(message));
}

bool Succeeded(const PGresult* result) {
  if (result == nullptr) return false;
  const ExecStatusType s = PQresultStatus(result);
  return s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK;
}

// Writes `v` as a NUL-terminated decimal into `slot` (kSlot bytes).
const char* PutInt(int64_t v, char* slot) {
  *std::to_chars(slot, slot + kSlot - 1, v).ptr = '\0';
  return slot;
}

// Writes W1's key of `id` as a NUL-terminated string into `slot` (kSlot
// bytes; a key takes at most 25).
const char* PutKey(uint64_t id, char* slot) {
  slot[W1::Key(id, slot).size()] = '\0';
  return slot;
}

// Field (row 0, `col`) of a result as an int64; false if it is not one.
bool GetInt(const PGresult* result, int col, int64_t* out) {
  if (PQntuples(result) < 1 || col >= PQnfields(result)) return false;
  const char* text = PQgetvalue(result, 0, col);
  const char* end = text + PQgetlength(result, 0, col);
  const auto [ptr, ec] = std::from_chars(text, end, *out);
  return ec == std::errc() && ptr == end;
}

// INSERT INTO events VALUES ($1,$2,$3,$4),($5,...) for `rows` rows.
std::string InsertSql(size_t rows) {
  std::string sql = "INSERT INTO events VALUES ";
  for (size_t r = 0; r < rows; ++r) {
    const size_t p = 4 * r;
    sql += r == 0 ? "(" : ",(";
    for (size_t c = 1; c <= 4; ++c) {
      sql += "$" + std::to_string(p + c) + (c < 4 ? "," : ")");
    }
  }
  return sql;
}

class PostgresConnection : public SystemConnection {
 public:
  ~PostgresConnection() override {
    if (conn_ != nullptr) PQfinish(conn_);
  }

  Status Open(const std::string& conninfo) {
    Status s;
    conn_ = OpenConn(conninfo, &s);
    if (!s.ok()) return s;
    s = PrepareStatement("decide", DecideSql(false).c_str(),
                         std::size(kDecideTypes), kDecideTypes);
    if (!s.ok()) return s;
    s = PrepareStatement("decide_w2", DecideSql(true).c_str(),
                         std::size(kDecideW2Types), kDecideW2Types);
    if (!s.ok()) return s;
    s = PrepareStatement("query", kQuerySql, std::size(kQueryTypes),
                         kQueryTypes);
    if (!s.ok()) return s;
    return PrepareStatement("query_distinct", kQueryDistinctSql,
                            std::size(kQueryTypes), kQueryTypes);
  }

  Status Add(std::vector<W1Event>* events,
             std::vector<bool>* applied) override {
    applied->assign(events->size(), false);
    int64_t now_ms = 0;  // read once per batch, when first needed
    for (W1Event& e : *events) {
      if (e.ts_ms != 0) continue;
      if (now_ms == 0) now_ms = WallMs();
      e.ts_ms = now_ms;
    }
    for (size_t first = 0; first < events->size(); first += kMaxRowsPerInsert) {
      const size_t rows = std::min(kMaxRowsPerInsert, events->size() - first);
      Status s = InsertRows(*events, first, rows);
      if (!s.ok()) {
        // A statement error leaves its rows unapplied; only a lost
        // connection is the caller's problem.
        if (s.code() == Code::kUnavailable) return s;
        continue;
      }
      std::fill_n(applied->begin() + static_cast<ptrdiff_t>(first), rows, true);
    }
    return Status::Ok();
  }

  Status Decide(const Decision& d, DecisionAnswer* answer) override {
    const W1Window w60 = W1::W60(d.now_ms);
    const W1Window w1h = W1::W1h(d.now_ms);
    const W1Window w24h = W1::W24h(d.now_ms);
    // The statement scans w24h only; W1's windows nest.
    assert(w24h.from_ms <= w1h.from_ms && w1h.from_ms <= w60.from_ms);
    assert(w60.to_ms <= w24h.to_ms && w1h.to_ms <= w24h.to_ms);
    const W1Window w30d = W1::W30d(d.now_ms);
    assert(w30d.from_ms <= w24h.from_ms && w24h.to_ms <= w30d.to_ms);
    char key_u[kSlot], key_u2[kSlot], bounds[8][kSlot];
    const int64_t ends[8] = {w60.from_ms,  w60.to_ms,    w1h.from_ms,
                             w1h.to_ms,    w24h.from_ms, w24h.to_ms,
                             w30d.from_ms, w30d.to_ms};
    const char* params[10];
    params[0] = PutKey(d.u, key_u);
    for (int i = 0; i < 6; ++i) params[1 + i] = PutInt(ends[i], bounds[i]);
    params[7] = PutKey(d.u2, key_u2);
    params[8] = PutInt(ends[6], bounds[6]);
    params[9] = PutInt(ends[7], bounds[7]);
    const int nparams = d.w30d ? 10 : 8;
    ResultPtr result(PQexecPrepared(conn_, d.w30d ? "decide_w2" : "decide",
                                    nparams, params, nullptr, nullptr, 0));
    if (!Succeeded(result.get())) return FailureStatus(conn_, result.get());
    for (int i = 0; i < (d.w30d ? 13 : 10); ++i) {
      if (!GetInt(result.get(), i, &answer->values[i])) {
        return Status::Internal("postgres: decision returned no integer");
      }
    }
    return Status::Ok();
  }

  Result<Observed> Query(std::string_view key, W1Window window,
                         bool distinct_only) override {
    const std::string key_text(key);
    char from[kSlot], to[kSlot];
    const char* params[3] = {key_text.c_str(), PutInt(window.from_ms, from),
                             PutInt(window.to_ms, to)};
    ResultPtr result(PQexecPrepared(conn_,
                                    distinct_only ? "query_distinct" : "query",
                                    3, params, nullptr, nullptr, 0));
    if (!Succeeded(result.get())) return FailureStatus(conn_, result.get());
    Observed o;
    int64_t distinct = 0;
    const bool parsed = distinct_only ? GetInt(result.get(), 0, &distinct)
                                      : GetInt(result.get(), 0, &o.count) &&
                                            GetInt(result.get(), 1, &o.sum) &&
                                            GetInt(result.get(), 2, &distinct);
    if (!parsed) return Status::Internal("postgres: query returned no integer");
    o.distinct = static_cast<uint64_t>(distinct);
    o.exact = true;
    o.covered_from_ms = window.from_ms;
    o.covered_to_ms = window.to_ms;
    return o;
  }

 private:
  Status PrepareStatement(const char* name, const char* sql, size_t nparams,
                          const Oid* types) {
    ResultPtr result(
        PQprepare(conn_, name, sql, static_cast<int>(nparams), types));
    if (!Succeeded(result.get())) return FailureStatus(conn_, result.get());
    return Status::Ok();
  }

  // One multi-row INSERT of events[first, first + rows), prepared on first
  // use of that row count (W1 uses 1, 16 and 1000).
  Status InsertRows(const std::vector<W1Event>& events, size_t first,
                    size_t rows) {
    const std::string name = "add_" + std::to_string(rows);
    if (!prepared_rows_.contains(rows)) {
      const std::vector<Oid> types = [rows] {
        std::vector<Oid> t;
        for (size_t r = 0; r < rows; ++r) {
          t.insert(t.end(), {kTextOid, kInt8Oid, kInt8Oid, kInt8Oid});
        }
        return t;
      }();
      Status s = PrepareStatement(name.c_str(), InsertSql(rows).c_str(),
                                  types.size(), types.data());
      if (!s.ok()) return s;
      prepared_rows_.insert(rows);
    }
    slots_.resize(rows * 4 * kSlot);
    params_.resize(rows * 4);
    for (size_t r = 0; r < rows; ++r) {
      const W1Event& e = events[first + r];
      char* slot = slots_.data() + r * 4 * kSlot;
      params_[4 * r] = PutKey(e.id, slot);
      params_[4 * r + 1] = PutInt(e.ts_ms, slot + kSlot);
      params_[4 * r + 2] = PutInt(e.amount, slot + 2 * kSlot);
      params_[4 * r + 3] =
          PutInt(static_cast<int64_t>(e.member), slot + 3 * kSlot);
    }
    ResultPtr result(PQexecPrepared(conn_, name.c_str(),
                                    static_cast<int>(rows * 4), params_.data(),
                                    nullptr, nullptr, 0));
    if (!Succeeded(result.get())) return FailureStatus(conn_, result.get());
    return Status::Ok();
  }

  PGconn* conn_ = nullptr;
  std::unordered_set<size_t> prepared_rows_;  // row counts with an add_<n>
  std::vector<char> slots_;                   // text of the add's parameters
  std::vector<const char*> params_;
};

// utime + stime + cutime + cstime (fields 14 to 17 of /proc/<pid>/stat), in
// clock ticks, if the process is named "postgres"; otherwise 0.
uint64_t PostgresTicks(const std::filesystem::path& proc_dir) {
  std::ifstream in(proc_dir / "stat");
  std::string stat((std::istreambuf_iterator<char>(in)),
                   std::istreambuf_iterator<char>());
  // "pid (comm) state ppid ...": comm may hold spaces, so split at the
  // parentheses.
  const size_t open = stat.find('(');
  const size_t close = stat.rfind(')');
  if (open == std::string::npos || close == std::string::npos ||
      stat.compare(open + 1, close - open - 1, "postgres") != 0) {
    return 0;
  }
  std::istringstream fields(stat.substr(close + 1));
  std::string skip;
  for (int field = 3; field < 14; ++field) fields >> skip;
  uint64_t ticks = 0;
  for (int field = 14; field <= 17; ++field) {
    int64_t t = 0;
    fields >> t;
    if (t > 0) ticks += static_cast<uint64_t>(t);
  }
  return ticks;
}

}  // namespace

PostgresSystem::PostgresSystem(std::string conninfo)
    : conninfo_(std::move(conninfo)) {}

PostgresSystem::~PostgresSystem() {
  if (admin_ != nullptr) PQfinish(admin_);
}

Status PostgresSystem::EnsureAdminLocked() {
  if (admin_ != nullptr && PQstatus(admin_) == CONNECTION_OK) {
    return Status::Ok();
  }
  if (admin_ != nullptr) PQfinish(admin_);
  Status s;
  admin_ = OpenConn(conninfo_, &s);
  return s;
}

Status PostgresSystem::Prepare() {
  std::lock_guard<std::mutex> lock(mu_);
  Status s = EnsureAdminLocked();
  if (!s.ok()) return s;
  ResultPtr result(PQexec(admin_, kSchemaSql));
  if (!Succeeded(result.get())) return FailureStatus(admin_, result.get());
  return Status::Ok();
}

Status PostgresSystem::AfterLoad() {
  std::lock_guard<std::mutex> lock(mu_);
  Status s = EnsureAdminLocked();
  if (!s.ok()) return s;
  ResultPtr result(PQexec(admin_, "ANALYZE events"));
  if (!Succeeded(result.get())) return FailureStatus(admin_, result.get());
  return Status::Ok();
}

Result<std::unique_ptr<SystemConnection>> PostgresSystem::Connect() {
  auto conn = std::make_unique<PostgresConnection>();
  Status s = conn->Open(conninfo_);
  if (!s.ok()) return s;
  return std::unique_ptr<SystemConnection>(std::move(conn));
}

SystemStats PostgresSystem::Stats() {
  SystemStats stats;
  stats.memory_kind = "events table + index bytes";

  uint64_t ticks = 0;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename().string();
    const bool is_pid = std::all_of(
        name.begin(), name.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (is_pid) ticks += PostgresTicks(entry.path());
  }
  stats.cpu_seconds =
      static_cast<double>(ticks) / static_cast<double>(sysconf(_SC_CLK_TCK));

  std::lock_guard<std::mutex> lock(mu_);
  // libpq notices a dropped connection only when a command fails on it, so a
  // failure on a broken connection gets one retry on a fresh one.
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (!EnsureAdminLocked().ok()) break;
    ResultPtr result(PQexec(admin_, "SELECT pg_total_relation_size('events')"));
    int64_t bytes = 0;
    if (Succeeded(result.get()) && GetInt(result.get(), 0, &bytes)) {
      stats.memory_bytes = static_cast<double>(bytes);
      break;
    }
    if (PQstatus(admin_) == CONNECTION_OK) break;  // an SQL error: no retry
  }
  return stats;
}

}  // namespace tally::bench
