# The two commands of the README, plus bench. Everything real happens in CMake and scripts/.
#   make run    install what is missing, build, start personad on ./data
#   make test   install what is missing, build (normal + ASan/UBSan), run every test in both
#   make bench  the benchmarks of docs/benchmarks.md
MAKEFLAGS += --no-print-directory
JOBS ?= $(shell nproc)
BUILD ?= build
BUILD_SAN ?= build-san
PORT ?= 8080

.PHONY: all bootstrap build build-san run test test-fast bench clean

all: build

bootstrap:
	@scripts/bootstrap.sh

build: bootstrap
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

build-san: bootstrap
	@cmake -S . -B $(BUILD_SAN) -DCMAKE_BUILD_TYPE=Debug -DPERSONA_SANITIZE=ON >/dev/null
	@cmake --build $(BUILD_SAN) -j $(JOBS)

run: build
	@PERSONAD_FLAGS="$(PERSONAD_FLAGS)" scripts/run.sh $(BUILD) $(PORT)

test: build build-san
	@echo "== tests (release build) =="
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS)
	@echo "== tests (AddressSanitizer + UndefinedBehaviorSanitizer) =="
	@cd $(BUILD_SAN) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		ctest --output-on-failure -j $(JOBS)

test-fast: build
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

bench: build
	@bench/run.sh $(BUILD)

clean:
	rm -rf $(BUILD) $(BUILD_SAN)
