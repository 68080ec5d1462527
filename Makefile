# The two commands of the README:
#   make demo   the main job: an emulated Alibaba Cloud VPC and what runs on it
#   make test   the whole test suite (unit, root-only, e2e, and an ASan/UBSan unit run)
# Both install their packages and build first.

BUILD      ?= build
ASAN_BUILD ?= build-asan
JOBS       ?= $(shell nproc)
CTEST_ARGS ?=

.PHONY: all deps build build-asan test test-unit test-root test-e2e test-asan demo bench clean

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

demo: build
	BUILD=$(BUILD) ./scripts/demo.sh

bench: build
	./scripts/bench.sh

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
