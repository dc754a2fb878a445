// A decision engine's use of libtally, ready to copy.
//
//   build/bin/decision_example [host] [port] [budget_ms]
//
// Records a payment and, in the same round trip, asks the velocity questions
// a fraud rule needs: how many payments and how much money for this user in
// the last minute, hour and day, and how many distinct cards in the last day.
// Every call has a deadline; on a timeout or an unreachable server the
// result says "degraded" and carries zeros (Fallback::kDefaultValue), and the
// rule decides what that means (here: send to manual review).

#include <tally/client.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

int main(int argc, char** argv) {
  tally::ClientOptions options;
  options.endpoints = {
      {argc > 1 ? argv[1] : "127.0.0.1",
       static_cast<uint16_t>(argc > 2 ? std::atoi(argv[2]) : 7379)}};
  options.default_timeout = std::chrono::milliseconds(5);  // the rule's budget
  options.fallback = tally::Fallback::kDefaultValue;  // zeros, marked degraded
  tally::Client client(options);                      // create once, share
  const int budget_ms = argc > 3 ? std::atoi(argv[3]) : 5;

  // At startup, not on the first decision: connect (and learn the server).
  tally::proto::Request hello;
  hello.body =
      tally::proto::HelloRequest{"decision-example", tally::kProtocolVersion};
  tally::CallOptions startup;
  startup.deadline = tally::ClientClock::now() + std::chrono::seconds(1);
  client.Call(hello, startup);

  const std::string user = "user:42", card = "card:4111-1111";
  constexpr int64_t kMinute = 60'000, kHour = 3'600'000, kDay = 86'400'000;
  constexpr uint32_t kCountSum =
      tally::proto::kAggCountBit | tally::proto::kAggSumBit;

  tally::Batch decision;
  decision
      .Add(user, /*amount=*/1999,
           /*member=*/card)  // this payment, in minor units
      .Query(user, kMinute, kCountSum)
      .Query(user, kHour, kCountSum)
      .Query(user, kDay, kCountSum | tally::proto::kAggDistinctBit);

  tally::CallOptions call;
  call.deadline =
      tally::ClientClock::now() + std::chrono::milliseconds(budget_ms);
  tally::CallResult<tally::BatchResult> result = client.Execute(decision, call);

  if (result.degraded != tally::Degraded::kNo) {
    std::printf("degraded (%s: %s): route to manual review\n",
                std::string(tally::DegradedName(result.degraded)).c_str(),
                result.message.c_str());
    return 0;
  }
  if (!result.ok()) {
    std::printf("error %s: %s\n",
                std::string(tally::CodeName(result.code)).c_str(),
                result.message.c_str());
    return 1;
  }
  const auto& q = result.value.queries;
  for (const auto& item : q) {
    if (item.code != tally::Code::kOk) {
      std::printf("query failed: %s\n", item.message.c_str());
      return 1;
    }
  }
  std::printf(
      "payments: %lld in 1 min, %lld in 1 h, %lld in 24 h; "
      "amount 24 h: %lld; distinct cards 24 h: %llu%s\n",
      static_cast<long long>(q[0].answer.count),
      static_cast<long long>(q[1].answer.count),
      static_cast<long long>(q[2].answer.count),
      static_cast<long long>(q[2].answer.sum),
      static_cast<unsigned long long>(q[2].answer.distinct),
      q[2].answer.exact ? "" : " (estimate)");
  const bool velocity_hit = q[0].answer.count > 5 || q[2].answer.distinct > 3;
  std::printf("decision: %s\n", velocity_hit ? "review" : "approve");
  return 0;
}
