#!/usr/bin/env bash
# Release check: what `goreleaser release` would build, without publishing.
# Installs goreleaser from the Go module proxy (a pinned version that builds
# with this repository's Go; the first build takes several minutes), checks
# .goreleaser.yaml, runs a snapshot release (nothing is published) on a
# clean clone of HEAD, and verifies the six binaries (one per OS and
# architecture, each the right executable format, stamped with the commit),
# the six archives (README and completions inside) and their checksums.
# Usage: scripts/release-check.sh        (GORELEASER=path skips the install)
set -euo pipefail
shopt -s nullglob
cd "$(dirname "$0")/.."
version=v2.17.0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

goreleaser=${GORELEASER:-}
if [ -z "$goreleaser" ]; then
  echo "installing goreleaser $version from the Go module proxy…" >&2
  GOBIN="$tmp/bin" go install "github.com/goreleaser/goreleaser/v2@$version"
  goreleaser="$tmp/bin/goreleaser"
fi

git clone --quiet . "$tmp/src"
cd "$tmp/src"
"$goreleaser" check
"$goreleaser" release --snapshot --clean >"$tmp/build.log" 2>&1 || { cat "$tmp/build.log" >&2; exit 1; }

commit=$(git rev-parse HEAD)
fail=0
for target in linux_amd64 linux_arm64 darwin_amd64 darwin_arm64 windows_amd64 windows_arm64; do
  os=${target%_*} before=$fail
  ext=; [ "$os" = windows ] && ext=.exe
  bins=(dist/experiment_"$target"*/experiment"$ext")
  bin=${bins[0]:-}
  if [ -z "$bin" ]; then
    echo "missing: $target" >&2; fail=1; continue
  fi
  # The version stamp is plain text in the binary: -X strings are stored whole.
  if ! grep -q "$commit" "$bin"; then
    echo "$bin: commit $commit not stamped" >&2; fail=1
  fi
  case "$os" in
    linux) magic='7f454c46' ;;   # ELF
    darwin) magic='cffaedfe' ;;  # Mach-O 64-bit
    windows) magic='4d5a' ;;     # MZ
  esac
  if [ "$(head -c ${#magic} < <(od -An -tx1 -N4 "$bin" | tr -d ' \n'))" != "$magic" ]; then
    echo "$bin: not a $os executable" >&2; fail=1
  fi
  archives=(dist/experiment_*_"$target".tar.gz dist/experiment_*_"$target".zip)
  archive=${archives[0]:-}
  if [ -z "$archive" ]; then
    echo "missing archive: $target" >&2; fail=1
  elif [ "${archive%.tar.gz}" != "$archive" ]; then
    listing=$(tar -tzf "$archive")
    for f in README.md completions/experiment.bash completions/_experiment completions/experiment.fish completions/experiment.ps1 experiment; do
      grep -qx "$f" <<<"$listing" || { echo "$archive: no $f" >&2; fail=1; }
    done
  fi
  if [ -n "$archive" ] && ! (cd dist && grep " ${archive#dist/}\$" checksums.txt | sha256sum --quiet -c -); then
    echo "$archive: checksum missing or wrong" >&2; fail=1
  fi
  [ "$fail" = "$before" ] && echo "ok  $target  $(du -h "$bin" | cut -f1)  $bin  ${archive#dist/}"
done
# The binary for this machine runs and reports what it was stamped with.
host=$(go env GOOS)_$(go env GOARCH)
ext=; [ "$(go env GOOS)" = windows ] && ext=.exe
hostbins=(dist/experiment_"$host"*/experiment"$ext")
stamped=$("${hostbins[0]}" version -o json)
grep -q "\"commit\": \"$commit\"" <<<"$stamped" ||
  { echo "experiment version does not report commit $commit: $stamped" >&2; fail=1; }
if [ "$fail" -ne 0 ]; then
  exit 1
fi
echo "release check passed: 6 binaries, 6 archives, checksums" >&2
