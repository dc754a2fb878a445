// ClientOptions::FromUri and the enum names of client.h.
//
// URI grammar:
//   tally://[host[:port][,host[:port]...]][?name=value[&name=value...]]
// host: a name, an IPv4 address or a bracketed IPv6 address ([::1]); port
// defaults to 7379; "unix:/absolute/path" is a Unix socket instead; no hosts
// keeps the default endpoint (127.0.0.1:7379). Parameters (each at most once;
// an unknown one is an error, so typos fail):
//   timeout, connect_timeout  a duration with its unit: 500us, 5ms, 2s, 1m
//   pool_size                 connections per endpoint, >= 1
//   max_in_flight             the bulkhead, >= 1
//   retries                   retries after the first attempt, >= 0
//                             (max_attempts = retries + 1)
//   fallback                  error | default | last_known
//   client_name               free text sent in Hello
//   auto_ids                  0 | 1 (auto_idempotency_ids)
//   breaker                   0 | 1 (BreakerPolicy::enabled)
// Errors: INVALID_ARGUMENT naming the offending part.

#include <charconv>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>

#include "client/tally/client.h"

namespace tally {

namespace {

Status Bad(std::string_view what) {
  return Status::InvalidArgument("bad tally URI: " + std::string(what));
}

bool ParseInt(std::string_view s, int64_t* out) {
  if (s.empty()) return false;
  const char* end = s.data() + s.size();
  auto [ptr, ec] = std::from_chars(s.data(), end, *out);
  return ec == std::errc() && ptr == end;
}

// "5ms" -> 5000 us. Units: us, ms, s, m. A number without unit is an error.
bool ParseDurationUs(std::string_view s, int64_t* us) {
  size_t digits = 0;
  while (digits < s.size() && s[digits] >= '0' && s[digits] <= '9') ++digits;
  int64_t n = 0;
  if (digits == 0 || !ParseInt(s.substr(0, digits), &n)) return false;
  const std::string_view unit = s.substr(digits);
  int64_t scale = 0;
  if (unit == "us") {
    scale = 1;
  } else if (unit == "ms") {
    scale = 1000;
  } else if (unit == "s") {
    scale = 1'000'000;
  } else if (unit == "m") {
    scale = 60'000'000;
  } else {
    return false;
  }
  if (n > INT64_MAX / scale) return false;
  *us = n * scale;
  return true;
}

Result<Endpoint> ParseHost(std::string_view part) {
  Endpoint ep;
  if (constexpr std::string_view kUnix = "unix:"; part.starts_with(kUnix)) {
    const std::string_view path = part.substr(kUnix.size());
    if (path.empty() || path.front() != '/') {
      return Bad("'" + std::string(part) +
                 "': a Unix socket needs an absolute path (unix:/path)");
    }
    ep.host = std::string(part);
    return ep;
  }
  std::string_view host = part;
  std::string_view port;
  if (!part.empty() && part.front() == '[') {
    const size_t close = part.find(']');
    if (close == std::string_view::npos) {
      return Bad("unterminated [ in '" + std::string(part) + "'");
    }
    host = part.substr(1, close - 1);
    std::string_view rest = part.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':')
        return Bad("junk after ] in '" + std::string(part) + "'");
      port = rest.substr(1);
      if (port.empty()) return Bad("empty port in '" + std::string(part) + "'");
    }
  } else {
    const size_t colon = part.rfind(':');
    if (colon != std::string_view::npos) {
      host = part.substr(0, colon);
      port = part.substr(colon + 1);
      if (port.empty()) return Bad("empty port in '" + std::string(part) + "'");
    }
  }
  if (host.empty()) return Bad("empty host in '" + std::string(part) + "'");
  ep.host = std::string(host);
  if (!port.empty()) {
    int64_t p = 0;
    if (!ParseInt(port, &p) || p < 1 || p > 65535) {
      return Bad("port '" + std::string(port) + "' is not in 1..65535");
    }
    ep.port = static_cast<uint16_t>(p);
  }
  return ep;
}

Status ApplyParam(std::string_view name, std::string_view value,
                  ClientOptions* o) {
  const std::string what = std::string(name) + "=" + std::string(value);
  int64_t n = 0;
  if (name == "timeout" || name == "connect_timeout") {
    if (!ParseDurationUs(value, &n) || n <= 0) {
      return Bad(what + ": want a positive duration such as 5ms");
    }
    if (name == "timeout") {
      o->default_timeout = std::chrono::microseconds(n);
    } else {
      o->connect_timeout = std::chrono::milliseconds((n + 999) / 1000);
    }
  } else if (name == "pool_size" || name == "max_in_flight") {
    if (!ParseInt(value, &n) || n < 1 || n > 1'000'000) {
      return Bad(what + ": want an integer >= 1");
    }
    (name == "pool_size" ? o->connections_per_endpoint : o->max_in_flight) =
        static_cast<int>(n);
  } else if (name == "retries") {
    if (!ParseInt(value, &n) || n < 0 || n > 100) {
      return Bad(what + ": want an integer in 0..100");
    }
    o->retry.max_attempts = static_cast<int>(n) + 1;
  } else if (name == "fallback") {
    if (value == "error") {
      o->fallback = Fallback::kError;
    } else if (value == "default") {
      o->fallback = Fallback::kDefaultValue;
    } else if (value == "last_known") {
      o->fallback = Fallback::kLastKnown;
    } else {
      return Bad(what + ": want error, default or last_known");
    }
  } else if (name == "client_name") {
    o->client_name = std::string(value);
  } else if (name == "auto_ids" || name == "breaker") {
    if (value != "0" && value != "1") return Bad(what + ": want 0 or 1");
    (name == "auto_ids" ? o->auto_idempotency_ids : o->breaker.enabled) =
        value == "1";
  } else {
    return Bad("unknown parameter '" + std::string(name) + "'");
  }
  return Status::Ok();
}

}  // namespace

Result<ClientOptions> ClientOptions::FromUri(std::string_view uri) {
  constexpr std::string_view kScheme = "tally://";
  if (uri.substr(0, kScheme.size()) != kScheme) {
    return Bad("'" + std::string(uri) + "' does not start with tally://");
  }
  std::string_view rest = uri.substr(kScheme.size());
  std::string_view query;
  if (const size_t q = rest.find('?'); q != std::string_view::npos) {
    query = rest.substr(q + 1);
    rest = rest.substr(0, q);
  }
  if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);

  ClientOptions options;
  if (!rest.empty()) {
    options.endpoints.clear();
    while (true) {
      const size_t comma = rest.find(',');
      Result<Endpoint> ep = ParseHost(rest.substr(0, comma));
      if (!ep.ok()) return ep.status();
      options.endpoints.push_back(std::move(ep).value());
      if (comma == std::string_view::npos) break;
      rest = rest.substr(comma + 1);
    }
  }

  std::set<std::string, std::less<>> seen;
  while (!query.empty()) {
    const size_t amp = query.find('&');
    const std::string_view param = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view()
                                          : query.substr(amp + 1);
    if (param.empty()) continue;
    const size_t eq = param.find('=');
    if (eq == std::string_view::npos) {
      return Bad("parameter '" + std::string(param) + "' has no value");
    }
    const std::string_view name = param.substr(0, eq);
    if (!seen.emplace(name).second) {
      return Bad("parameter '" + std::string(name) + "' given twice");
    }
    if (Status s = ApplyParam(name, param.substr(eq + 1), &options); !s.ok()) {
      return s;
    }
  }
  return options;
}

std::string EndpointName(const Endpoint& endpoint) {
  if (endpoint.host.starts_with("unix:")) return endpoint.host;
  return endpoint.host + ":" + std::to_string(endpoint.port);
}

std::string_view DegradedName(Degraded d) {
  switch (d) {
    case Degraded::kNo:
      return "no";
    case Degraded::kTimeout:
      return "timeout";
    case Degraded::kShortCircuited:
      return "short_circuited";
    case Degraded::kRejected:
      return "rejected";
    case Degraded::kFailure:
      return "failure";
  }
  return "unknown";
}

std::string_view CircuitStateName(CircuitState s) {
  switch (s) {
    case CircuitState::kClosed:
      return "closed";
    case CircuitState::kOpen:
      return "open";
    case CircuitState::kHalfOpen:
      return "half_open";
    case CircuitState::kForcedOpen:
      return "forced_open";
  }
  return "unknown";
}

}  // namespace tally
