# Sourced by scripts/setup.sh and scripts/test-deps.sh: install the Debian packages that are missing.
#   apt_ensure WHO PACKAGE...    (WHO names the caller in messages)
apt_ensure() {
  local who=$1; shift
  local missing=() p
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  ((${#missing[@]})) || return 0
  if [[ $(id -u) -ne 0 ]]; then
    echo "$who: missing Debian packages ${missing[*]}: run as root (apt-get install), or install them" >&2
    return 1
  fi
  echo "$who: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
}
