# Sourced by tools/sanitize.sh and tools/fuzz.sh: how sanitized binaries
# run here. Debian's libraries are not instrumented: a std::vector filled
# inside them looks overflowed to ASan's container checks, so those are
# off. Leaks are checked; gRPC's process-lifetime singletons are not ours
# to free (tools/lsan.supp).
export ASAN_OPTIONS="detect_container_overflow=0:abort_on_error=1:detect_leaks=1"
export LSAN_OPTIONS="suppressions=$ROOT/tools/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
