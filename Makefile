# Passerelle quick start: `make demo` and `make test` (see README.md).
BUILD_DIR ?= build
JOBS ?= 2
SHARED_DIR ?= $(abspath ../shared)
CMAKE_FLAGS ?=
MAKEFLAGS += --no-print-directory

.PHONY: all bootstrap configure build test format format-check demo bench fuzz sanitize clean

all: build

bootstrap:
	@scripts/bootstrap.sh

$(BUILD_DIR)/CMakeCache.txt:
	cmake -S . -B $(BUILD_DIR) -DPSL_SHARED_DIR=$(SHARED_DIR) $(CMAKE_FLAGS)

configure: bootstrap $(BUILD_DIR)/CMakeCache.txt

build: configure
	cmake --build $(BUILD_DIR) -j$(JOBS)

format:
	@git ls-files --cached --others --exclude-standard '*.h' '*.cc' | xargs clang-format -i --style=file

format-check:
	@scripts/format_check.sh

test: build format-check
	cd $(BUILD_DIR) && ctest --output-on-failure -j$(JOBS)

demo: build
	@scripts/demo.sh $(BUILD_DIR)

# The performance case (issue 6): installs the bench-only packages (the Python and Java peers,
# gnuplot, perf), builds what the bench runs (an optimised build: the default RelWithDebInfo) and
# runs every measurement; the report goes to load-tests/reports/. BENCH_ARGS=--quick for a
# tooling check, --force to write a disturbed run (marked DISTURBED), --soak 30 for the soak.
BENCH_ARGS ?=
bench: configure
	@scripts/bootstrap.sh bench
	cmake --build $(BUILD_DIR) -j$(JOBS) --target passerelle insurer_simulator loadgen \
	  codecs_benchmark store_benchmark
	load-tests/bench --build-dir $(BUILD_DIR) --shared-dir $(SHARED_DIR) $(BENCH_ARGS)

# The libFuzzer target (clang) seeded from the conformance corpus; FUZZ_SECONDS=60 by default.
FUZZ_SECONDS ?= 60
fuzz: bootstrap
	cmake -S . -B build-fuzz -DPSL_SHARED_DIR=$(SHARED_DIR) -DCMAKE_C_COMPILER=clang \
	  -DCMAKE_CXX_COMPILER=clang++ -DPSL_FUZZ=ON
	cmake --build build-fuzz --target mhm_fuzz -j$(JOBS)
	rm -rf build-fuzz/corpus && mkdir -p build-fuzz/corpus
	build-fuzz/codecs/mhm_fuzz -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=4096 \
	  build-fuzz/corpus conformance/mhm/valid conformance/mhm/invalid conformance/mhm/multi

# The whole suite built with clang, AddressSanitizer and UndefinedBehaviorSanitizer.
sanitize: bootstrap
	cmake -S . -B build-sanitize -DPSL_SHARED_DIR=$(SHARED_DIR) -DCMAKE_C_COMPILER=clang \
	  -DCMAKE_CXX_COMPILER=clang++ -DPSL_SANITIZE=ON
	cmake --build build-sanitize -j$(JOBS)
	cd build-sanitize && ctest --output-on-failure -j$(JOBS)

clean:
	rm -rf $(BUILD_DIR) build-fuzz build-sanitize
