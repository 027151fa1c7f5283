# The README's commands. Each installs what it needs, configures and builds.
BUILD ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=
# cmake --build runs make under this one: without this, each of its steps
# says "Entering directory" twice.
MAKEFLAGS += --no-print-directory

.PHONY: all deps build test test-sanitize demo bench bench-build fuzz soak clean

all: build

deps:
	@scripts/deps.sh test

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

test: build
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

# The whole suite again, built with AddressSanitizer and UndefinedBehaviorSanitizer.
test-sanitize: deps
	@cmake -S . -B $(BUILD)-sanitize -DCMAKE_BUILD_TYPE=Debug -DMAILLAGE_SANITIZE=ON >/dev/null
	@cmake --build $(BUILD)-sanitize -j $(JOBS)
	@cd $(BUILD)-sanitize && ASAN_OPTIONS=detect_leaks=1 ctest --output-on-failure -j $(JOBS)

demo: build
	@DEMO_KEEP=$(KEEP) scripts/demo.sh $(BUILD)

bench: bench-build
	@bench/run.sh $(BUILD)-bench

# The benchmark programs only (`make bench` builds them first; CI runs it on tiny sizes).
bench-build:
	@scripts/deps.sh bench
	@cmake -S . -B $(BUILD)-bench -DCMAKE_BUILD_TYPE=Release -DMAILLAGE_BENCH=ON $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD)-bench -j $(JOBS)

clean:
	rm -rf $(BUILD) $(BUILD)-sanitize $(BUILD)-fuzz $(BUILD)-bench

# Each libFuzzer target for FUZZ_SECONDS (default 20) from its seed corpus.
FUZZ_SECONDS ?= 20
fuzz: deps
	@cmake -S . -B $(BUILD)-fuzz -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug -DMAILLAGE_FUZZ=ON -DMAILLAGE_SANITIZE=ON >/dev/null
	@cmake --build $(BUILD)-fuzz -j $(JOBS)
	@scripts/fuzz.sh $(BUILD)-fuzz $(FUZZ_SECONDS)

# The fault tests of the delivery guarantees with many more events (not part
# of `make test`): SOAK_EVENTS per test, default 100000.
SOAK_EVENTS ?= 100000
soak: build
	@cd $(BUILD) && MAILLAGE_FAULT_EVENTS=$(SOAK_EVENTS) ctest --output-on-failure -R integration.delivery --timeout 3600
