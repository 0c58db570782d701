#!/usr/bin/env bash
# On the GPU machine: gathers the kit parts that came with this call (carried
# target/device/stage-N/) into /tmp/atlas-kit, where they wait for the next call on the same warm
# machine, and says which parts are still missing. tools/device/prepare.sh makes the stages;
# tools/device/check.sh calls this itself and unpacks the kit once every part is there.
#
#   bash tools/device/stage.sh        # the command of every stage call but the last
#
# Exit status: 0 when every part is there, 3 when some are missing (the next stage calls bring
# them; a machine given back in between starts empty, so the stage calls are redone).
set -uo pipefail
DEST=/tmp/atlas-kit
mkdir -p "$DEST"
for d in target/device/stage-*/; do
  [ -d "$d" ] || continue
  for f in "$d"kit.*; do
    [ -e "$f" ] || continue
    cp "$f" "$DEST/"
  done
done
if [ ! -f "$DEST/kit.sha256" ]; then
  echo "stage: no kit.sha256 in $DEST: carry a target/device/stage-N folder (tools/device/prepare.sh)" >&2
  exit 3
fi
want=$(cat "$DEST/kit.parts")
missing=()
for ((i = 0; i < want; i++)); do
  p=$(printf '%02d' "$i")
  [ -f "$DEST/kit.tar.part-$p" ] || missing+=("$p")
done
have=$((want - ${#missing[@]}))
echo "stage: $have of $want kit parts in $DEST ($(du -sh "$DEST" | cut -f1))"
if [ ${#missing[@]} -gt 0 ]; then
  echo "stage: missing part(s) ${missing[*]}: the next call carries target/device/stage-<part>" >&2
  exit 3
fi
exit 0
