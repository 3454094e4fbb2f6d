#!/usr/bin/env bash
# The main job, end to end, on a fresh machine: build dm-apply, start the bundled DM-master simulator, plan and
# apply the examples, then plan again and require "No changes." (exit code 0 with --detailed-exitcode).
set -euo pipefail
cd "$(dirname "$0")/.."

# The same library build `cargo test` makes, so the tests reuse it instead of compiling it again.
cargo build --quiet --locked
# Where cargo put the binary: CARGO_TARGET_DIR (relative to here, or absolute) when set, else ./target.
target_dir=${CARGO_TARGET_DIR:-target}
bin="$target_dir/debug/dm-apply"
if [ ! -x "$bin" ]; then
  echo "quick start: cannot find the dm-apply binary at $bin" >&2
  exit 1
fi
port=${DM_APPLY_QUICKSTART_PORT:-18261}
export DM_APPLY_ADDR="http://127.0.0.1:$port"
# The examples read their passwords from the environment (never from git).
export DM_SOURCE_PASSWORD=${DM_SOURCE_PASSWORD:-quickstart-source-pw}
export DM_TARGET_PASSWORD=${DM_TARGET_PASSWORD:-quickstart-target-pw}

"$bin" sim --listen "127.0.0.1:$port" --workers 8 --seed 1 &
sim=$!
trap 'kill $sim 2>/dev/null || true; wait $sim 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  sleep 0.05
done

echo "--- dm-apply validate -f examples"
"$bin" validate -f examples
echo "--- dm-apply plan -f examples"
"$bin" plan -f examples
echo "--- dm-apply apply -f examples --auto-approve"
"$bin" apply -f examples --auto-approve
echo "--- dm-apply plan -f examples --detailed-exitcode"
"$bin" plan -f examples --detailed-exitcode
echo "quick start: OK (the cluster matches the configuration)"
