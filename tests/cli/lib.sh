# Shared helpers of the CLI end-to-end scripts (sourced). Expects $work.
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

# expect CODE PATTERN -- command...: the exit code and a pattern in stderr.
expect() {
  local code="$1" pattern="$2"
  shift 3
  "$@" >"$work/out" 2>"$work/err"
  local rc=$?
  [ "$rc" -eq "$code" ] || fail "'$*' exited $rc, expected $code: $(head -c 300 "$work/err")"
  grep -q -- "$pattern" "$work/err" || fail "'$*' did not say '$pattern': $(head -c 300 "$work/err")"
}

finish() {
  if [ "$failures" -ne 0 ]; then
    echo "$failures check(s) failed"
    exit 1
  fi
  echo "$1"
}
