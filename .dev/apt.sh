#!/usr/bin/env bash
# apt.sh PKG… — installs the Debian packages that are missing, and nothing else.
# Uses sudo when not root. `apt-get update` runs at most once per machine boot.
set -euo pipefail
missing=()
for p in "$@"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
sudo=()
[ "$(id -u)" = 0 ] || sudo=(sudo)
echo "apt: installing ${missing[*]}" >&2
stamp=/tmp/.leadify-apt-updated
[ -f "$stamp" ] || { "${sudo[@]}" apt-get update -qq && touch "$stamp"; }
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
