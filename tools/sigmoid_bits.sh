#!/bin/sh
# The sigmoid and exp of csrc/fastbp_math.h at REV (default HEAD~1) against the working
# tree's, bit for bit: all 2^32 float32 inputs and 1e8 float64 ones, row loops and scalar
# functions, built three ways (target_clones as in the wheel; no clones at -march=x86-64 and
# at x86-64-v3). Prints the differing counts; exits 1 on any difference. ~4 min.
# (In the clones build the scalar functions compile for the baseline, without FMA, so there
# "scalar/exp differing" counts old scalar vs old rows too and is not 0.)
set -e
REV=${1:-HEAD~1}
HERE=$(cd "$(dirname "$0")" && pwd)
W=$(mktemp -d)
mkdir -p "$W/old" "$W/new" "$W/oldnc" "$W/newnc"
git -C "$HERE/.." show "$REV:csrc/fastbp_math.h" > "$W/old/fastbp_math.h"
cp "$HERE/../csrc/fastbp_math.h" "$W/new/fastbp_math.h"
for h in old new; do
    sed 's/^#define FBP_CLONES __attribute.*/#define FBP_CLONES/' "$W/$h/fastbp_math.h" > "$W/${h}nc/fastbp_math.h"
done
status=0
for build in "clones old new" "default oldnc newnc -march=x86-64" "v3 oldnc newnc -march=x86-64-v3"; do
    set -- $build
    gcc -O3 $4 "-DNAME(x)=old_##x" -I "$W/$2" -c "$HERE/sigmoid_bits_tu.c" -o "$W/old.o"
    gcc -O3 $4 "-DNAME(x)=new_##x" -I "$W/$3" -c "$HERE/sigmoid_bits_tu.c" -o "$W/new.o"
    gcc -O2 "$HERE/sigmoid_bits_main.c" "$W/old.o" "$W/new.o" -lm -o "$W/bits"
    echo "== $1"
    "$W/bits" || [ "$1" = clones ] || status=1
done
rm -rf "$W"
exit $status
