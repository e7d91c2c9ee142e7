# Shared helpers for scripts/test and scripts/demo. Sourced, not run.
# Every service binds to 127.0.0.1 and keeps its state under $CACHEKIT_STATE_DIR (default .cache/cachekit).

CACHEKIT_STATE_DIR=${CACHEKIT_STATE_DIR:-"$PWD/.cache/cachekit"}
mkdir -p "$CACHEKIT_STATE_DIR"

# Debian packages the test suite needs. Later backends add to this list (redis-server, libhiredis-dev, ...).
TEST_APT_PACKAGES=(ca-certificates)

log() { printf '[cachekit %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

ensure_swift() {
  if ! command -v swift >/dev/null 2>&1; then
    if [ -x /opt/swift/usr/bin/swift ]; then
      export PATH="/opt/swift/usr/bin:$PATH"
    else
      log "swift is not installed: install Swift 6.2 or newer (https://www.swift.org/install/linux/)"
      exit 1
    fi
  fi
}

ensure_apt_packages() {
  local missing=()
  for package in "$@"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  log "installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

STARTED_SERVICES=()

start_services() {
  # No servers are needed yet: the memory layers run in-process. Redis and PostgreSQL are started here when
  # their backends land, and registered in STARTED_SERVICES so stop_services stops them.
  :
}

stop_services() {
  local status=$?
  for service in "${STARTED_SERVICES[@]:-}"; do
    [ -n "$service" ] && "stop_$service" || true
  done
  return $status
}
