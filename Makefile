# mongo2delta build. `make` builds build/mongo2delta (optimized); `make test` builds with
# AddressSanitizer + UndefinedBehaviorSanitizer and runs the unit and integration tests.
CC      ?= gcc
PKGS    := libmongoc-1.0 libbson-1.0 libcurl rdkafka jansson libzstd snappy zlib liblz4 libbrotlidec libbrotlienc libcrypto
CFLAGS_BASE := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Wno-missing-field-initializers -Wno-format-truncation \
               -Isrc $(shell pkg-config --cflags $(PKGS) 2>/dev/null) -MMD -MP -pthread
LDLIBS  := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lroaring -lm -pthread

SRC      := $(shell find src -name '*.c' | sort)
LIB_SRC  := $(filter-out src/cli/main.c,$(SRC))
TEST_SRC := $(shell find tests/unit -name '*.c' | sort)

REL_DIR  := build/release
ASAN_DIR := build/asan
REL_CFLAGS  := $(CFLAGS_BASE) -O2 -g -DNDEBUG
ASAN_CFLAGS := $(CFLAGS_BASE) -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined \
               -fno-sanitize-recover=undefined

PYTEST ?= .venv/bin/python -m pytest
export ASAN_OPTIONS ?= detect_leaks=1:abort_on_error=0:halt_on_error=1:exitcode=86
export UBSAN_OPTIONS ?= print_stacktrace=1:halt_on_error=1:exitcode=86
# no libmongoc counters in /dev/shm for test processes (see tests/integration/conftest.py)
export MONGOC_DISABLE_SHM ?= 1

.PHONY: all deps test test-unit test-integration asan demo clean test-long bench bench-parquet bench-delta bench-publish bench-sync bench-s3 bench-kafka bench-load bench-snapshot bench-optimize
# The packages are installed first and the build runs in a sub-make, so that the pkg-config
# flags above are computed after the -dev packages exist (on a fresh machine they do not yet).
all: deps
	@$(MAKE) --no-print-directory build/mongo2delta

deps:
	@scripts/bootstrap --build-only

# --- optimized build ---------------------------------------------------------------------
REL_OBJ := $(SRC:%.c=$(REL_DIR)/%.o)
$(REL_DIR)/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "CC $<"
	@$(CC) $(REL_CFLAGS) -c $< -o $@
build/mongo2delta: $(REL_OBJ)
	@echo "LD $@"
	@$(CC) $(REL_CFLAGS) $^ -o $@ $(LDLIBS)

# --- sanitizer build, used by the tests ---------------------------------------------------
ASAN_OBJ      := $(SRC:%.c=$(ASAN_DIR)/%.o)
ASAN_LIB_OBJ  := $(LIB_SRC:%.c=$(ASAN_DIR)/%.o)
ASAN_TEST_OBJ := $(TEST_SRC:%.c=$(ASAN_DIR)/%.o)
$(ASAN_DIR)/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "CC (asan) $<"
	@$(CC) $(ASAN_CFLAGS) -Itests/unit -c $< -o $@
$(ASAN_DIR)/mongo2delta: $(ASAN_OBJ)
	@echo "LD $@"
	@$(CC) $(ASAN_CFLAGS) $^ -o $@ $(LDLIBS)
$(ASAN_DIR)/unit-tests: $(ASAN_LIB_OBJ) $(ASAN_TEST_OBJ)
	@echo "LD $@"
	@$(CC) $(ASAN_CFLAGS) $^ -o $@ $(LDLIBS)
asan: deps $(ASAN_DIR)/mongo2delta $(ASAN_DIR)/unit-tests

# --- tests -------------------------------------------------------------------------------
test:
	@scripts/bootstrap
	$(MAKE) --no-print-directory asan
	$(MAKE) --no-print-directory test-unit
	$(MAKE) --no-print-directory fuzz-smoke
	$(MAKE) --no-print-directory test-integration

test-unit: $(ASAN_DIR)/unit-tests
	$(ASAN_DIR)/unit-tests

test-integration: $(ASAN_DIR)/mongo2delta
	M2D_BIN=$(abspath $(ASAN_DIR)/mongo2delta) $(PYTEST) -q tests/integration

# The heavy acceptance runs (marked `long`): a million documents, many crash trials. They use
# the optimized build (the sanitizer build runs in `make test`).
test-long:
	@scripts/bootstrap
	$(MAKE) --no-print-directory build/mongo2delta
	M2D_BIN=$(abspath build/mongo2delta) $(PYTEST) -q -m long tests/integration

demo: all
	@scripts/bootstrap
	scripts/demo

clean:
	rm -rf build

-include $(REL_OBJ:.o=.d) $(ASAN_OBJ:.o=.d) $(ASAN_TEST_OBJ:.o=.d)

# --- fuzzing (libFuzzer, clang) ----------------------------------------------------------
# fuzz-smoke: a short deterministic run of every harness, seeded from the parquet-testing
# corpus (read in place), plus a replay of every crash ever found (fuzz/regressions/).
# fuzz: the same, 10 minutes per harness.
FUZZ_DIR     := build/fuzz
FUZZ_CC      := clang
FUZZ_CFLAGS  := -std=c11 -D_GNU_SOURCE -MMD -MP -g -O1 -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined \
                -Isrc $(shell pkg-config --cflags $(PKGS) 2>/dev/null) -pthread
FUZZ_LIB_OBJ := $(LIB_SRC:%.c=$(FUZZ_DIR)/%.o)
FUZZERS      := footer page reader toml
FUZZ_SEEDS   := ../shared/testdata/parquet-testing/data
# fuzz-smoke is deterministic: a fixed seed and a fixed number of runs per harness
FUZZ_RUNS    ?= footer=150000 page=400000 reader=25000 toml=200000
FUZZ_SECONDS ?= 0

$(FUZZ_DIR)/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "CC (fuzz) $<"
	@$(FUZZ_CC) $(FUZZ_CFLAGS) -c $< -o $@
$(FUZZ_DIR)/fuzz_%: fuzz/fuzz_%.c $(FUZZ_LIB_OBJ)
	@echo "LD $@"
	@$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer $^ -o $@ $(LDLIBS)

.SECONDARY: $(FUZZ_LIB_OBJ)
-include $(FUZZ_LIB_OBJ:.o=.d)
.PHONY: fuzz-build fuzz-smoke fuzz
fuzz-build: deps $(FUZZERS:%=$(FUZZ_DIR)/fuzz_%)

fuzz-smoke: fuzz-build
	@for h in $(FUZZERS); do \
	  regs=$$(ls fuzz/regressions/$$h 2>/dev/null | grep -v '^README' | sed "s|^|fuzz/regressions/$$h/|"); \
	  if [ -n "$$regs" ]; then $(FUZZ_DIR)/fuzz_$$h $$regs >/dev/null 2>&1 || { echo "fuzz: regression of $$h fails"; $(FUZZ_DIR)/fuzz_$$h $$regs; exit 1; }; fi; \
	  mkdir -p $(FUZZ_DIR)/corpus-$$h; \
	  runs=$$(echo "$(FUZZ_RUNS)" | tr ' ' '\n' | sed -n "s/^$$h=//p"); \
	  if [ "$(FUZZ_SECONDS)" != 0 ]; then limit="-max_total_time=$(FUZZ_SECONDS)"; else limit="-runs=$$runs"; fi; \
	  rm -rf $(FUZZ_DIR)/corpus-$$h; mkdir -p $(FUZZ_DIR)/corpus-$$h; \
	  $(FUZZ_DIR)/fuzz_$$h -seed=1 $$limit -max_len=262144 -rss_limit_mb=2048 -timeout=10 \
	    -artifact_prefix=$(FUZZ_DIR)/crash-$$h- $(FUZZ_DIR)/corpus-$$h $(FUZZ_SEEDS) > $(FUZZ_DIR)/fuzz-$$h.log 2>&1 \
	    || { tail -40 $(FUZZ_DIR)/fuzz-$$h.log; echo "fuzz: $$h found a crash (see $(FUZZ_DIR)/crash-$$h-*)"; exit 1; }; \
	  echo "fuzz: $$h ok, $$(grep -o 'Done [0-9]* runs in [0-9]* second' $(FUZZ_DIR)/fuzz-$$h.log)s, regressions replayed: $$(echo $$regs | wc -w)"; \
	done

fuzz:
	$(MAKE) fuzz-smoke FUZZ_SECONDS=600

# --- benchmarks ----------------------------------------------------------------------------
# Side by side in one run, each against its reference; print JSON, see bench/RESULTS.md.
# bench-parquet: the Parquet engine against pyarrow. bench-delta: opening a Delta table
# (10,000 commits with checkpoints; 100,000 files) against delta-rs; the generated tables are
# kept in $(BENCH_DELTA_DIR) for the next run.
BENCH_ROWS ?= 10000000
BENCH_DELTA_DIR ?= build/bench-delta
BENCH_DELTA_REPS ?= 7
bench: bench-parquet bench-delta bench-publish bench-sync bench-s3 bench-kafka bench-load bench-snapshot bench-optimize
bench-parquet: all
	@scripts/bootstrap
	.venv/bin/python bench/parquet_bench.py --rows $(BENCH_ROWS)
bench-delta: all
	@scripts/bootstrap
	.venv/bin/python bench/delta_open_bench.py --workdir $(BENCH_DELTA_DIR) --reps $(BENCH_DELTA_REPS)
# publish (Delta table -> MongoDB test server) against pymongo bulk writes fed by delta-rs/pyarrow;
# BENCH_PUBLISH_ARGS=--bin-before B adds another build of mongo2delta to the same run
BENCH_PUBLISH_ROWS ?= 1000000
BENCH_PUBLISH_HEAP ?= 10g
BENCH_PUBLISH_ARGS ?=
bench-publish: all
	@scripts/bootstrap
	.venv/bin/python bench/publish_bench.py --rows $(BENCH_PUBLISH_ROWS) --server-heap $(BENCH_PUBLISH_HEAP) $(BENCH_PUBLISH_ARGS)
# optimize of a table of many small files (made once with `mongo2delta load`, kept in
# $(BENCH_OPTIMIZE_DIR)) against delta-rs optimize.compact(); BENCH_OPTIMIZE_ARGS=--bin-before B adds
# another build of mongo2delta to the same run
BENCH_OPTIMIZE_ROWS ?= 10000000
BENCH_OPTIMIZE_DIR ?= build/bench-optimize
BENCH_OPTIMIZE_ARGS ?=
bench-optimize: all
	@scripts/bootstrap
	.venv/bin/python bench/optimize_bench.py --rows $(BENCH_OPTIMIZE_ROWS) --out $(BENCH_OPTIMIZE_DIR) $(BENCH_OPTIMIZE_ARGS)
# sync: latency and events/s at offered rates against a pymongo change stream + write_deltalake
# loop; one batch of 10,000 updates into tables of 100,000 and 10,000,000 rows against delta-rs
# MERGE (the tables are kept in $(BENCH_SYNC_DIR) for the next run)
BENCH_SYNC_DIR ?= build/bench-sync
BENCH_SYNC_ARGS ?=
bench-sync: all
	@scripts/bootstrap
	.venv/bin/python bench/sync_bench.py --out $(BENCH_SYNC_DIR) $(BENCH_SYNC_ARGS)
# snapshot into a bucket (MinIO on loopback) against a local folder, and delta-rs's
# write_deltalake of the same rows into the same bucket
BENCH_S3_DOCS ?= 1000000
bench-s3: all
	@scripts/bootstrap
	.venv/bin/python bench/s3_bench.py --docs $(BENCH_S3_DOCS)
# the Kafka path (kafka-produce -> broker -> kafka-ingest --mode mirror) at offered rates, against
# sync straight into a mirror, kafka-produce alone and a Python consumer (confluent-kafka +
# delta-rs merge) of the same topic; MongoDB and Kafka test servers on loopback (about 8 minutes)
BENCH_KAFKA_ARGS ?=
bench-kafka: all
	@scripts/bootstrap
	.venv/bin/python bench/kafka_bench.py $(BENCH_KAFKA_ARGS)
# load: a generated mongodump of $(BENCH_LOAD_DOCS) documents of about 1 KB into a Delta table,
# against pymongoarrow's process_bson_stream + delta-rs write_deltalake of the same file; both
# tables read back and compared per value (the dump is kept in $(BENCH_LOAD_DIR) for the next run)
BENCH_LOAD_DOCS ?= 1000000
BENCH_LOAD_DIR ?= build/bench-load
BENCH_LOAD_REPS ?= 2
bench-load: all
	@scripts/bootstrap
	.venv/bin/python bench/load_bench.py --docs $(BENCH_LOAD_DOCS) --reps $(BENCH_LOAD_REPS) --workdir $(BENCH_LOAD_DIR)
# snapshot (test server -> Delta) against the MongoDB Spark Connector (pyspark local[2], Delta):
# which of its partitioners work against the test server, then both sides on the same
# collection of BENCH_SNAPSHOT_DOCS 1 KB documents, then one document per BSON type through each
BENCH_SNAPSHOT_DOCS ?= 1000000
BENCH_SNAPSHOT_HEAP ?= 10g
BENCH_SNAPSHOT_ARGS ?=
bench-snapshot: all
	@scripts/bootstrap
	.venv/bin/python bench/snapshot_bench.py --docs $(BENCH_SNAPSHOT_DOCS) --server-heap $(BENCH_SNAPSHOT_HEAP) $(BENCH_SNAPSHOT_ARGS)
