# Sourced by scripts/test, scripts/demo and bench/run: installs what is missing
# from Debian's packages (apt-get), and nothing that is already there.
# Usage: ensure_packages pkg...
ensure_packages() {
    local missing=()
    local p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "==> installing: ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# What building the module needs.
BUILD_PACKAGES=(g++ cmake make pkg-config apache2 apache2-dev apache2-utils libaprutil1-dev libkrb5-dev)
