#!/usr/bin/env bash
# podman as CI runs it on these machines (sourced by the image scripts; also
# usable as `scripts/podman.sh ARGS…`):
#   - runc with the cgroupfs cgroup manager: no systemd to hand cgroups to;
#   - explicit ulimits for `run`/`create`: podman's defaults (1048576 open files and
#     processes) exceed the machine's hard limits, and the runtime may not raise a
#     limit (no CAP_SYS_RESOURCE), so a container would not start at all.
#     RUN steps of a build keep the inherited limits and need nothing.
PODMAN_GLOBAL=(--runtime runc --cgroup-manager cgroupfs)
# nproc counts the container user's processes host-wide; uid 10001 has only the node's.
_wc_nofile=$(ulimit -Hn)
[[ $_wc_nofile == unlimited ]] && _wc_nofile=1048576
PODMAN_ULIMITS=(--ulimit "nofile=$_wc_nofile:$_wc_nofile" --ulimit nproc=4096:4096)

wc_podman() { podman "${PODMAN_GLOBAL[@]}" "$@"; }

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
  case ${1:-} in
    run | create) cmd=$1 && shift && exec podman "${PODMAN_GLOBAL[@]}" "$cmd" "${PODMAN_ULIMITS[@]}" "$@" ;;
    *) exec podman "${PODMAN_GLOBAL[@]}" "$@" ;;
  esac
fi
