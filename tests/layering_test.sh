#!/usr/bin/env bash
# Checks the layer rules of docs/design.md on the source tree:
#   storage/  never includes FlatBuffers, Asio, gflags, server/ or client/;
#   protocol/ never includes storage/, server/ or client/;
#   client/   never includes storage/ or server/;
#   only *_main.cc and flags.cc read FLAGS_*;
#   server/ and storage/ time their timers, deadlines and intervals on
#   BootClock (CLOCK_BOOTTIME, storage/boot_clock.h) and BootTimer
#   (server/boot_timer.h), never on steady_clock or Asio's steady_timer
#   (RELIABILITY.md F6; comments aside).
# Library code only: *_test.cc files may include anything to build their
# fixtures (e.g. the client's tests run a real server in-process).
set -u
cd "$(dirname "$0")/.."
fail=0
check() {  # check <dir> <regex> <why>
  local hits
  hits=$(grep -rnE "$2" "$1" --include='*.h' --include='*.cc' --exclude='*_test.cc' 2>/dev/null)
  if [ -n "$hits" ]; then echo "layering: $3:"; echo "$hits"; fail=1; fi
}
check storage  '#include [<"](flatbuffers|boost/asio|gflags|server/|client/)' 'storage/ must not depend on these'
check protocol '#include "(storage|server|client)/'                            'protocol/ must not depend on these'
check client   '#include "(storage|server)/'                                     'client/ must not depend on these'
flags=$(grep -rlE '\bFLAGS_[a-z]' storage protocol server client tools --include='*.h' --include='*.cc' 2>/dev/null \
        | grep -vE '(_main\.cc|/flags\.cc)$')
if [ -n "$flags" ]; then echo "layering: FLAGS_ read outside *_main.cc / flags.cc:"; echo "$flags"; fail=1; fi
clocks=$(grep -rnE 'std::chrono::(steady_clock|high_resolution_clock)|asio::(steady_timer|system_timer|high_resolution_timer)|asio/(steady|system|high_resolution)_timer\.hpp' \
          storage server --include='*.h' --include='*.cc' --exclude='*_test.cc' 2>/dev/null \
        | grep -vE '^[^:]+:[0-9]+:[[:space:]]*//')
if [ -n "$clocks" ]; then echo "layering: timers in server/ and storage/ must use BootClock / BootTimer:"; echo "$clocks"; fail=1; fi
[ $fail -eq 0 ] && echo "layering: ok"
exit $fail
