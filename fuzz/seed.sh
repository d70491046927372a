#!/bin/sh
# Fills fuzz/corpus/<target>/ with seeds before a run: the committed seeds in fuzz/seeds/,
# the project's fixtures (examples/auth.log, the shipped ruleset blocks), and the shared
# reference corpus (../shared/corpus, the Wazuh templates' ossec.conf), which is copied at run
# time and never committed. Log files are cut into pieces of at most 40 lines so that each
# seed stays under libFuzzer's default -max_len (4096).
#
#   fuzz/seed.sh [SHARED_DIR]    (default: ../shared from the repository, or $REPUTE_SHARED)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
shared=${1:-${REPUTE_SHARED:-}}
if [ -z "$shared" ]; then
    for candidate in "$repo/../shared" "$repo/../../shared"; do
        [ -d "$candidate/corpus" ] && shared=$candidate && break
    done
fi
corpus=$here/corpus
mkdir -p "$corpus/sshd_line" "$corpus/wazuh_alert" "$corpus/active_response" "$corpus/ossec_conf"

for target in wazuh_alert active_response ossec_conf; do
    cp "$here/seeds/$target/"* "$corpus/$target/"
done
cp "$repo/src/wazuh/ruleset/integration_block.xml" "$corpus/ossec_conf/"

# Cuts FILE into 40-line pieces named PREFIX-NNNN in DIR.
pieces() {
    split -l 40 -d -a 4 "$1" "$3/$2-"
}

pieces "$repo/examples/auth.log" examples-auth "$corpus/sshd_line"

if [ -n "$shared" ] && [ -d "$shared/corpus" ]; then
    n=0
    find "$shared/corpus/fail2ban" "$shared/corpus/crowdsec" "$shared/corpus/sshguard" \
        -type f ! -name '*.yaml' ! -name '*.assert' | while read -r f; do
        n=$((n + 1))
        pieces "$f" "shared-$n" "$corpus/sshd_line"
    done
    # The injection probes: one line each (the TSV's fourth column is the line).
    if [ -f "$shared/corpus/injection/sshd-injection.tsv" ]; then
        grep -v '^#' "$shared/corpus/injection/sshd-injection.tsv" | cut -f4- |
            split -l 1 -d -a 5 - "$corpus/sshd_line/injection-"
    fi
    # Alerts around the corpus's sshd lines, as Wazuh would write them.
    if command -v python3 >/dev/null; then
        find "$shared/corpus/fail2ban" "$shared/corpus/crowdsec" -type f -name '*.log' -o -type f -path '*fail2ban*' |
            head -n 20 | python3 -c '
import json, sys, os
out = sys.argv[1]
for i, path in enumerate(sys.stdin.read().split()):
    try:
        lines = [l for l in open(path, errors="replace").read().splitlines() if "sshd" in l][:20]
    except OSError:
        continue
    for j, line in enumerate(lines):
        alert = {"timestamp": "2026-11-28T10:32:55.123+0000",
                 "rule": {"level": 5, "id": "5760", "description": "sshd"},
                 "agent": {"id": "001", "name": "a"}, "id": "1.%d" % j,
                 "full_log": line, "location": "/var/log/auth.log",
                 "data": {"srcip": "198.51.100.%d" % (j % 250)}}
        with open(os.path.join(out, "shared-%d-%d.json" % (i, j)), "w") as f:
            json.dump(alert, f)
' "$corpus/wazuh_alert"
    fi
    for conf in "$shared"/wazuh/*/template/etc/ossec.conf "$shared/wazuh/build/ossec.conf.in"; do
        [ -f "$conf" ] && cp "$conf" "$corpus/ossec_conf/$(echo "$conf" | tr / _)"
    done
else
    echo "seed.sh: no shared corpus found (pass its directory); using the project's seeds only" >&2
fi
for target in sshd_line wazuh_alert active_response ossec_conf; do
    echo "$target: $(ls "$corpus/$target" | wc -l) seeds"
done
