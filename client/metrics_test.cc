#include "client/tally/metrics.h"

#include <gtest/gtest.h>

#include <string>

#include "client/tally/client.h"
#include "server/in_process_server.h"

namespace tally {
namespace {

bool Has(const std::string& text, const std::string& line) {
  return text.find(line + "\n") != std::string::npos;
}

TEST(PrometheusClientMetricsTest, RendersEveryFamilyFromRecords) {
  PrometheusClientMetrics m;
  m.CircuitStateChanged("10.0.0.1:7379", CircuitState::kClosed);
  m.CallStarted(proto::Op::kQuery);
  m.CallStarted(proto::Op::kQuery);
  m.CallStarted(proto::Op::kAdd);
  m.CallFinished({.op = proto::Op::kQuery,
                  .code = Code::kOk,
                  .degraded = Degraded::kNo,
                  .attempts = 1,
                  .latency = std::chrono::microseconds(80)});
  m.CallFinished({.op = proto::Op::kQuery,
                  .code = Code::kDeadlineExceeded,
                  .degraded = Degraded::kTimeout,
                  .fallback = true,
                  .attempts = 3,
                  .latency = std::chrono::milliseconds(7)});
  m.CircuitStateChanged("10.0.0.1:7379", CircuitState::kOpen);
  const std::string text = m.Render();
  EXPECT_TRUE(Has(text, "# TYPE tally_client_requests_total counter"));
  EXPECT_TRUE(
      Has(text, "tally_client_requests_total{op=\"query\",outcome=\"ok\"} 1"));
  EXPECT_TRUE(Has(
      text, "tally_client_requests_total{op=\"query\",outcome=\"timeout\"} 1"));
  EXPECT_TRUE(Has(text, "tally_client_retries_total 2"));
  EXPECT_TRUE(Has(text, "tally_client_fallbacks_total{reason=\"timeout\"} 1"));
  EXPECT_TRUE(Has(text, "tally_client_fallbacks_total{reason=\"failure\"} 0"));
  // 80 us is above 50 us and within 100 us; 7 ms within 10 ms.
  EXPECT_TRUE(Has(
      text, "tally_client_request_duration_seconds_bucket{le=\"5e-05\"} 0"));
  EXPECT_TRUE(Has(
      text, "tally_client_request_duration_seconds_bucket{le=\"0.0001\"} 1"));
  EXPECT_TRUE(Has(
      text, "tally_client_request_duration_seconds_bucket{le=\"0.005\"} 1"));
  EXPECT_TRUE(
      Has(text, "tally_client_request_duration_seconds_bucket{le=\"0.01\"} 2"));
  EXPECT_TRUE(
      Has(text, "tally_client_request_duration_seconds_bucket{le=\"+Inf\"} 2"));
  EXPECT_TRUE(Has(text, "tally_client_request_duration_seconds_count 2"));
  EXPECT_TRUE(Has(text, "tally_client_inflight 1"));  // the add
  EXPECT_TRUE(Has(text,
                  "tally_client_circuit_state{endpoint=\"10.0.0.1:7379\","
                  "state=\"open\"} 1"));
  EXPECT_TRUE(Has(text,
                  "tally_client_circuit_state{endpoint=\"10.0.0.1:7379\","
                  "state=\"closed\"} 0"));
}

// The client calls its sink: real calls against an in-process server, then
// the breaker forced open with a default-value fallback.
TEST(ClientMetricsTest, ClientReportsCallsFallbacksAndBreakerState) {
  InProcessServerOptions so;
  so.server.port = 0;
  so.server.threads = 1;
  InProcessServer server(so);
  ASSERT_TRUE(server.status().ok()) << server.status().ToString();

  PrometheusClientMetrics metrics;
  ClientOptions options;
  options.endpoints = {Endpoint{.host = "127.0.0.1", .port = server.port()}};
  options.default_timeout = std::chrono::seconds(5);
  options.connect_timeout = std::chrono::milliseconds(1000);
  options.metrics = &metrics;
  const std::string endpoint = "127.0.0.1:" + std::to_string(server.port());
  {
    Client client(options);
    ASSERT_TRUE(client.Add("k", 1).ok());
    ASSERT_TRUE(client.Query("k", 60'000).ok());
    client.ForceOpen(true);
    CallOptions fallback;
    fallback.fallback = Fallback::kDefaultValue;
    auto degraded = client.Query("k", 60'000, 0, fallback);
    EXPECT_EQ(degraded.degraded, Degraded::kShortCircuited);
  }
  const std::string text = metrics.Render();
  EXPECT_TRUE(
      Has(text, "tally_client_requests_total{op=\"add\",outcome=\"ok\"} 1"))
      << text;
  EXPECT_TRUE(
      Has(text, "tally_client_requests_total{op=\"query\",outcome=\"ok\"} 1"));
  EXPECT_TRUE(Has(text,
                  "tally_client_requests_total{op=\"query\",outcome=\"short_"
                  "circuited\"} 1"));
  EXPECT_TRUE(
      Has(text, "tally_client_fallbacks_total{reason=\"short_circuited\"} 1"));
  EXPECT_TRUE(Has(text, "tally_client_circuit_state{endpoint=\"" + endpoint +
                            "\",state=\"forced_open\"} 1"));
  EXPECT_TRUE(Has(text, "tally_client_request_duration_seconds_count 3"));
  EXPECT_TRUE(Has(text, "tally_client_inflight 0"));
}

}  // namespace
}  // namespace tally
