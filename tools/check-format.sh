#!/usr/bin/env bash
# Fails if a tracked C++ file is not clang-formatted (Google style, .clang-format).
set -euo pipefail
cd "$(dirname "$0")/.."
bad=$(git ls-files '*.h' '*.cc' | while read -r f; do
  clang-format --dry-run -Werror "$f" >/dev/null 2>&1 || echo "$f"; done)
if [ -n "$bad" ]; then
  echo "not clang-formatted (run: clang-format -i <file>):"; echo "$bad"; exit 1
fi
echo "check-format: ok"
