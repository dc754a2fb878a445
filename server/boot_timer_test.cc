// BootTimer (server/boot_timer.h): Asio's waitable timer on BootClock. It
// must fire, never before its expiry as BootClock reads it, and cancel like
// any Asio timer. No timing thresholds beyond "not early".

#include "server/boot_timer.h"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <chrono>

namespace tally {
namespace {

using std::chrono::milliseconds;

TEST(BootTimerTest, FiresNoEarlierThanItsExpiry) {
  boost::asio::io_context io;
  BootTimer timer(io);
  timer.expires_after(milliseconds(20));
  const BootClock::time_point expiry = timer.expiry();
  bool fired = false;
  BootClock::time_point fired_at{};
  timer.async_wait([&](const boost::system::error_code& ec) {
    EXPECT_FALSE(ec) << ec.message();
    fired = true;
    fired_at = BootClock::now();
  });
  io.run();
  ASSERT_TRUE(fired);
  EXPECT_GE(fired_at, expiry);
}

TEST(BootTimerTest, ExpiresAtAnAbsoluteBootTime) {
  boost::asio::io_context io;
  BootTimer timer(io);
  const auto at = BootClock::now() + milliseconds(10);
  timer.expires_at(at);
  bool fired = false;
  timer.async_wait([&](const boost::system::error_code& ec) {
    EXPECT_FALSE(ec);
    EXPECT_GE(BootClock::now(), at);
    fired = true;
  });
  io.run();
  EXPECT_TRUE(fired);
}

TEST(BootTimerTest, CancelAbortsTheWait) {
  boost::asio::io_context io;
  BootTimer timer(io);
  timer.expires_after(std::chrono::hours(1));
  boost::system::error_code result;
  timer.async_wait([&](const boost::system::error_code& ec) { result = ec; });
  boost::asio::post(io, [&] { timer.cancel(); });
  io.run();
  EXPECT_EQ(result, boost::asio::error::operation_aborted);
}

}  // namespace
}  // namespace tally
