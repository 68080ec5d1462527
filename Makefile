# The two commands of the README:
#   make demo   the main job: an emulated Alibaba Cloud VPC and what runs on it
#   make test   the whole test suite (unit, root-only, e2e, the unit tests under
#               ASan/UBSan and the threaded ones under TSan, and the fuzzers)
# Both install their packages and build first.

BUILD      ?= build
ASAN_BUILD ?= build-asan
TSAN_BUILD ?= build-tsan
FUZZ_BUILD ?= build-fuzz
JOBS       ?= $(shell nproc)
CTEST_ARGS ?=

.PHONY: all deps build build-asan build-tsan build-fuzz test test-unit test-root test-e2e test-asan \
	test-tsan test-fuzz demo bench clean

all: build

deps:
	./scripts/deps.sh

$(BUILD)/build.ninja:
	cmake -G Ninja -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo

build: deps $(BUILD)/build.ninja
	cmake --build $(BUILD) -j $(JOBS)

test: build
	./scripts/test.sh

test-unit: build
	ctest --test-dir $(BUILD) -L unit --output-on-failure -j $(JOBS) $(CTEST_ARGS)

test-root: build
	ctest --test-dir $(BUILD) -L root --output-on-failure $(CTEST_ARGS)

test-e2e: build
	ctest --test-dir $(BUILD) -L e2e --output-on-failure $(CTEST_ARGS)

build-asan: deps
	cmake -G Ninja -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DTERWAY_SANITIZE=ON -DTERWAY_UNIT_ONLY=ON
	cmake --build $(ASAN_BUILD) -j $(JOBS)

test-asan: build-asan
	ctest --test-dir $(ASAN_BUILD) -L unit --output-on-failure -j $(JOBS)

# ThreadSanitizer: the unit tests marked TSAN (the threaded parts) and the
# libraries they link; see TERWAY_TSAN in CMakeLists.txt.
build-tsan: deps
	cmake -G Ninja -S . -B $(TSAN_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTERWAY_TSAN=ON
	cmake --build $(TSAN_BUILD) -j $(JOBS)

test-tsan: build-tsan
	ctest --test-dir $(TSAN_BUILD) -L unit --output-on-failure -j $(JOBS)

# libFuzzer (clang): the CNI plugin's parsers, tests/fuzz; only src/cni and
# the few src/common files it needs are compiled. TERWAY_FUZZ_SECONDS sets
# each target's run (default 30).
build-fuzz: deps
	cmake -G Ninja -S . -B $(FUZZ_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTERWAY_FUZZ=ON \
	  -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++
	cmake --build $(FUZZ_BUILD) -j $(JOBS)

test-fuzz: build-fuzz
	ctest --test-dir $(FUZZ_BUILD) -L fuzz --output-on-failure -j $(JOBS)

demo: build
	BUILD=$(BUILD) ./scripts/demo.sh

bench: build
	./scripts/bench.sh

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(TSAN_BUILD) $(FUZZ_BUILD)
