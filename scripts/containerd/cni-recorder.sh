#!/bin/bash
# A CNI plugin stand-in that records what the runtime passed: installed as CNI_BIN/NAME with the
# real plugin moved to CNI_BIN/NAME.real, it runs the real plugin with the same environment and
# stdin, answers exactly as it did (stdout, exit code), and appends one JSON line per call to
# $CNI_RECORD_LOG: plugin, CNI_COMMAND, CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME, CNI_ARGS,
# CNI_PATH, the stdin config (parsed), the plugin's stdout and exit code. The runtime's own
# environment reaches plugins, so the runtime client (ctr) sets CNI_RECORD_LOG.
# Only bash builtins on the call path, plus one jq for the record.
real=$0.real
IFS= read -r -d '' conf
out=$("$real" <<<"$conf")
rc=$?
if [[ -n ${CNI_RECORD_LOG:-} ]]; then
    jq -cn --arg plugin "${0##*/}" --arg command "${CNI_COMMAND-}" --arg containerid "${CNI_CONTAINERID-}" \
        --arg netns "${CNI_NETNS-}" --arg ifname "${CNI_IFNAME-}" --arg args "${CNI_ARGS-}" --arg path "${CNI_PATH-}" \
        --arg cniargs_set "${CNI_ARGS+set}" --arg stdin "$conf" --arg stdout "$out" --argjson rc "$rc" \
        '{plugin: $plugin, command: $command, containerid: $containerid, netns: $netns, ifname: $ifname,
          args: $args, args_set: ($cniargs_set == "set"), path: $path,
          conf: ($stdin | try fromjson catch $stdin), stdout: $stdout, rc: $rc}' >>"$CNI_RECORD_LOG" 2>/dev/null || true
fi
[[ -n $out ]] && printf '%s\n' "$out"
exit "$rc"
