#!/usr/bin/env bash
# A machine-wide cache of the tools `make setup` puts under .tools (checkov's and KServe's virtualenvs, the helm
# binaries, the chart's node modules), so that a clean clone on a warm machine links them instead of building them.
#
#   mk/toolcache.sh LINK 'WHAT THE TOOL IS MADE FROM' COMMAND...
#
# The cache entry is named after LINK's basename and a hash of the second argument (pinned versions, lock files'
# sha256, the Python it runs on): a changed input is a new entry, never a stale one. COMMAND builds the tool into
# $TOOL_DIR, the entry itself (a virtualenv cannot be moved after it is made); an entry counts only once COMMAND has
# succeeded, and a half-made one is built again. LINK becomes a symlink to the entry.
#   mk/toolcache.sh --dir NAME 'WHAT IT DEPENDS ON'
#
# prints (and makes) the entry for a cache that a tool fills itself and checks itself, such as mypy's (its entries
# carry each module's hash, so a clone with other sources rechecks them; sharing saves the rest).
# FLASK_SVC_TOOL_CACHE picks the cache directory (default /var/cache/flask-svc-tools, else ~/.cache/flask-svc-tools
# where that is not writable); FLASK_SVC_TOOL_CACHE=off builds into LINK itself, as before the cache.
set -euo pipefail
dir_only=false
if [[ "$1" == --dir ]]; then
  dir_only=true
  shift
fi
link=$1 inputs=$2
shift 2

if [[ "${FLASK_SVC_TOOL_CACHE:-}" == off ]]; then
  if [[ "${dir_only}" == true ]]; then
    echo ".${link}_cache"
    exit 0
  fi
  rm -rf "${link}" && mkdir -p "${link}"
  TOOL_DIR="${link}" "$@"
  exit 0
fi

# What is found in the cache is run as is, so only a directory this user owns and nobody else may write is used:
# anyone who could write there could plant an entry (its name follows from public pins) or a lock symlink.
trusted() {
  [[ -d "$1" && ! -L "$1" && -O "$1" ]] && (( ($(stat -c '%#a' "$1") & 8#022) == 0 ))
}
root="${FLASK_SVC_TOOL_CACHE:-/var/cache/flask-svc-tools}"
if ! { mkdir -p -m 0755 "${root}" 2>/dev/null && trusted "${root}"; }; then
  fallback="${XDG_CACHE_HOME:-${HOME}/.cache}/flask-svc-tools"
  mkdir -p -m 0755 "${fallback}"
  if ! trusted "${fallback}"; then
    echo "toolcache: neither ${root} nor ${fallback} is owned by $(id -un) and closed to others: refusing to use either" >&2
    exit 1
  fi
  echo "toolcache: ${root} is not owned by $(id -un) or is open to others; using ${fallback}" >&2
  root="${fallback}"
fi
key="$(printf '%s' "${inputs}" | sha256sum | cut -c1-16)"
entry="${root}/$(basename "${link}")-${key}"
if [[ "${dir_only}" == true ]]; then
  mkdir -p "${entry}"
  echo "${entry}"
  exit 0
fi

# One builder per entry at a time: clones set up side by side wait for each other instead of both building.
exec 9>"${entry}.lock"
flock 9
if [[ ! -e "${entry}/.toolcache-complete" ]]; then
  echo "toolcache: building ${entry} ($(basename "${link}"): ${inputs})"
  rm -rf "${entry}" && mkdir -p "${entry}"
  TOOL_DIR="${entry}" "$@"
  printf '%s\n' "${inputs}" >"${entry}/.toolcache-complete"
fi
mkdir -p "$(dirname "${link}")"
rm -rf "${link}"
ln -sfn "${entry}" "${link}"
