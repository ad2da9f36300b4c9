# shellcheck shell=bash
# Sourced by tools/debug_kernel_tests.sh and tools/check_extending.sh, which
# build and test a copy of the repository, never the work tree.

# scratch_copy REPO DEST: copy REPO's tracked and new files into DEST; not
# what git ignores, so no generated _kernels.c and no release .so.
scratch_copy() {
    mkdir -p "$2"
    (cd "$1" && git ls-files -z --cached --others --exclude-standard) |
        while IFS= read -r -d '' file; do
            [ -e "$1/$file" ] && (cd "$1" && cp --parents -- "$file" "$2/")
        done
}
