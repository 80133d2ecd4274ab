# Passerelle quick start: `make demo` and `make test` (see README.md).
BUILD_DIR ?= build
JOBS ?= 2
SHARED_DIR ?= $(abspath ../shared)
CMAKE_FLAGS ?=
MAKEFLAGS += --no-print-directory

.PHONY: all bootstrap configure build test format format-check demo clean

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

clean:
	rm -rf $(BUILD_DIR)
