# stillmap — a thin wrapper around CMake.  CMakeLists.txt is the build.
#
#   make                  configure and build the release build in build/
#   make demo             build and run examples/incidents.c (DEMO_ARGS=...)
#   make test             release, ASan+UBSan (with the SM_DEBUG misuse
#                         checks) and TSan builds, each under ctest, then
#                         an install into build/stage that is used through
#                         pkg-config and find_package
#   make install          install into $(PREFIX) (default /usr/local)
#   make bench            build and run the benchmark (tools/bench.py)
#   make fuzz             clang libFuzzer build in build-fuzz/, ctest -L fuzz
#                         (corpus replay + a 60 s fuzz run; part of make test
#                         when clang is installed)
#   make fuzz-long        the same build, 30 minutes of fuzzing
#   make memcheck         the unit tests under valgrind memcheck (small scale)
#   make clean            remove every build directory
#
# Knobs: PREFIX, JOBS (default 2), CTEST_JOBS, ASAN_SCALE, TSAN_SCALE,
# TSAN_TESTS (ctest -R/-L arguments for the TSan build), CMAKE_FLAGS,
# BENCH_ARGS.

PREFIX      ?= /usr/local
JOBS        ?= 2
CTEST_JOBS  ?= 1
CMAKE       ?= cmake
CTEST       ?= ctest
CC          ?= cc
CXX         ?= c++
PKG_CONFIG  ?= pkg-config
CMAKE_FLAGS ?=
BENCH_ARGS  ?=

BUILD       := build
ASAN_BUILD  := build-asan
TSAN_BUILD  := build-tsan
FUZZ_BUILD  := build-fuzz
STAGE       := $(CURDIR)/$(BUILD)/stage
CHECK_DIR   := $(BUILD)/install-check

# SM_TEST_SCALE for the sanitizer builds (they run 3-15x slower).
ASAN_SCALE  ?= 0.25
TSAN_SCALE  ?= 0.1
# Which tests the TSan build runs (empty = all of them).
TSAN_TESTS  ?=

# Sanitizer builds: optimised enough to be quick, asserts kept (no NDEBUG).
SAN_FLAGS   := -DCMAKE_BUILD_TYPE=Debug "-DCMAKE_C_FLAGS_DEBUG=-O1 -g" \
               -DSM_BUILD_BENCH=OFF

CTEST_ARGS  := --output-on-failure --no-tests=error -j$(CTEST_JOBS)

# The sub-steps run one after the other; each build is parallel inside.
MAKEFLAGS += --no-print-directory
.NOTPARALLEL:
.PHONY: all build demo test test-release test-asan test-tsan test-install test-fuzz \
        install clean bench fuzz fuzz-long memcheck help

say = @printf '\n==> [%s] %s\n' "$$(date +%H:%M:%S)" "$(1)"

all: build

help:
	@sed -n '2,16p' Makefile | sed 's/^# \{0,1\}//'

build:
	$(call say,configure the release build in $(BUILD)/)
	$(CMAKE) -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS)
	$(call say,build $(BUILD)/ with -j$(JOBS))
	$(CMAKE) --build $(BUILD) -j$(JOBS)

demo: build
	$(call say,run the demo: $(BUILD)/examples/sm_incidents $(DEMO_ARGS))
	$(BUILD)/examples/sm_incidents $(DEMO_ARGS)

test: test-release test-asan test-tsan test-install test-fuzz
	$(call say,make test: every step passed)

# The fuzz smoke run needs clang's libFuzzer; without clang it is skipped,
# with a line saying so.
test-fuzz:
	@if command -v clang >/dev/null 2>&1; then \
	    $(MAKE) --no-print-directory fuzz; \
	else \
	    echo "==> test-fuzz: skipped, clang is not installed (apt-get install clang)"; \
	fi

fuzz-long: fuzz
	$(call say,30 minutes of fuzzing in $(FUZZ_BUILD)/)
	$(CMAKE) --build $(FUZZ_BUILD) --target fuzz-long

# Unit tests under valgrind memcheck, at a small scale (valgrind is ~50x
# slower).  The stress tests are left to the sanitizer builds.
MEMCHECK_SCALE ?= 0.02
memcheck: build
	$(call say,valgrind memcheck on the unit tests (SM_TEST_SCALE=$(MEMCHECK_SCALE)))
	@set -e; for t in $(BUILD)/tests/test_*; do \
	    case "$$t" in *_fork) continue;; esac; \
	    echo "valgrind $$t"; \
	    SM_TEST_SCALE=$(MEMCHECK_SCALE) valgrind -q --error-exitcode=99 \
	        --leak-check=full --errors-for-leak-kinds=definite "$$t" > /dev/null; \
	done
	$(call say,memcheck: no errors)

test-release: build
	$(call say,ctest: release build)
	$(CTEST) --test-dir $(BUILD) $(CTEST_ARGS)

test-asan:
	$(call say,configure ASan+UBSan build with SM_DEBUG in $(ASAN_BUILD)/ (SM_TEST_SCALE=$(ASAN_SCALE)))
	$(CMAKE) -S . -B $(ASAN_BUILD) -DSM_SANITIZE=address -DSM_DEBUG=ON -DSM_TEST_SCALE=$(ASAN_SCALE) \
	    $(SAN_FLAGS) $(CMAKE_FLAGS)
	$(call say,build $(ASAN_BUILD)/ with -j$(JOBS))
	$(CMAKE) --build $(ASAN_BUILD) -j$(JOBS)
	$(call say,ctest: ASan+UBSan build with SM_DEBUG)
	$(CTEST) --test-dir $(ASAN_BUILD) $(CTEST_ARGS)

test-tsan:
	$(call say,configure TSan build in $(TSAN_BUILD)/ (SM_TEST_SCALE=$(TSAN_SCALE)))
	$(CMAKE) -S . -B $(TSAN_BUILD) -DSM_SANITIZE=thread -DSM_TEST_SCALE=$(TSAN_SCALE) \
	    $(SAN_FLAGS) $(CMAKE_FLAGS)
	$(call say,build $(TSAN_BUILD)/ with -j$(JOBS))
	$(CMAKE) --build $(TSAN_BUILD) -j$(JOBS)
	$(call say,ctest: TSan build $(if $(TSAN_TESTS),($(TSAN_TESTS)),(all tests)))
	$(CTEST) --test-dir $(TSAN_BUILD) $(CTEST_ARGS) $(TSAN_TESTS)

# Install into a stage and use it the way a user would: pkg-config (shared
# with rpath, and fully static) and a find_package() consumer project.
test-install:
	$(call say,install into $(STAGE))
	rm -rf $(STAGE) $(CHECK_DIR)
	$(MAKE) --no-print-directory install PREFIX=$(STAGE)
	mkdir -p $(CHECK_DIR)
	$(call say,pkg-config --cflags --libs stillmap (from the stage))
	PKG_CONFIG_PATH=$(STAGE)/lib/pkgconfig $(PKG_CONFIG) --modversion stillmap
	PKG_CONFIG_PATH=$(STAGE)/lib/pkgconfig $(PKG_CONFIG) --cflags --libs stillmap
	PKG_CONFIG_PATH=$(STAGE)/lib/pkgconfig $(PKG_CONFIG) --static --cflags --libs stillmap
	$(call say,the installed header compiles alone as C11 and as C++)
	printf '#include <stillmap.h>\nint main(void) { return sm_version() == 0; }\n' > $(CHECK_DIR)/header.c
	$(CC) -std=c11 -pedantic -Wall -Wextra -Werror -fsyntax-only -I$(STAGE)/include $(CHECK_DIR)/header.c
	@if command -v $(CXX) >/dev/null 2>&1; then \
	    echo "$(CXX) -std=c++11 -pedantic -Wall -Wextra -Werror -fsyntax-only -x c++ -I$(STAGE)/include $(CHECK_DIR)/header.c"; \
	    $(CXX) -std=c++11 -pedantic -Wall -Wextra -Werror -fsyntax-only -x c++ -I$(STAGE)/include $(CHECK_DIR)/header.c; \
	else echo "($(CXX) not found: C++ header check skipped)"; fi
	$(call say,quickstart.c against the stage: shared library with rpath)
	$(CC) -std=c11 -Wall -Wextra -Werror -o $(CHECK_DIR)/quickstart-shared examples/quickstart.c \
	    $$(PKG_CONFIG_PATH=$(STAGE)/lib/pkgconfig $(PKG_CONFIG) --cflags --libs stillmap) \
	    -Wl,-rpath,$(STAGE)/lib
	$(CHECK_DIR)/quickstart-shared
	@ldd $(CHECK_DIR)/quickstart-shared | grep -F '$(STAGE)/lib/libstillmap.so.0' \
	    || { echo "quickstart-shared does not load libstillmap.so.0 from the stage"; exit 1; }
	$(call say,quickstart.c against the stage: static (pkg-config --static))
	$(CC) -std=c11 -Wall -Wextra -Werror -static -o $(CHECK_DIR)/quickstart-static examples/quickstart.c \
	    $$(PKG_CONFIG_PATH=$(STAGE)/lib/pkgconfig $(PKG_CONFIG) --static --cflags --libs stillmap)
	$(CHECK_DIR)/quickstart-static
	@if readelf -d $(CHECK_DIR)/quickstart-static 2>/dev/null | grep -q 'libstillmap'; then \
	    echo "quickstart-static depends on libstillmap.so"; exit 1; fi
	$(call say,find_package(stillmap) consumer: examples/cmake-consumer against the stage)
	$(CMAKE) -S examples/cmake-consumer -B $(CHECK_DIR)/consumer -DCMAKE_PREFIX_PATH=$(STAGE)
	$(CMAKE) --build $(CHECK_DIR)/consumer -j$(JOBS)
	$(CHECK_DIR)/consumer/consumer_shared
	$(CHECK_DIR)/consumer/consumer_static

install:
	$(call say,configure $(BUILD)/ for installing into $(PREFIX))
	$(CMAKE) -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX=$(PREFIX) $(CMAKE_FLAGS)
	$(call say,build $(BUILD)/ with -j$(JOBS))
	$(CMAKE) --build $(BUILD) -j$(JOBS)
	$(call say,install into $(PREFIX))
	$(CMAKE) --install $(BUILD)

# libFuzzer needs clang: a separate build in build-fuzz/, then the fuzz
# tests (corpus replay and a 60 s fuzz_smoke run).
fuzz:
	$(call say,configure the clang libFuzzer build in $(FUZZ_BUILD)/)
	CC=clang $(CMAKE) -S . -B $(FUZZ_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	    -DSM_BUILD_BENCH=OFF $(CMAKE_FLAGS)
	$(call say,build $(FUZZ_BUILD)/ with -j$(JOBS))
	$(CMAKE) --build $(FUZZ_BUILD) -j$(JOBS)
	$(call say,ctest -L fuzz: $(FUZZ_BUILD)/)
	$(CTEST) --test-dir $(FUZZ_BUILD) $(CTEST_ARGS) -L fuzz

# tools/bench.py runs the suite (fresh process per measurement, medians,
# peers); BENCH_ARGS go to it, e.g. BENCH_ARGS=--quick for a smoke run.
bench: build
	$(call say,run the benchmark)
	@if [ ! -x $(BUILD)/bench/sm_bench ]; then \
	    echo "bench: $(BUILD)/bench/sm_bench does not exist (bench/ is not built)"; \
	elif [ -f tools/bench.py ] && command -v python3 >/dev/null 2>&1; then \
	    echo "python3 tools/bench.py --bin $(BUILD)/bench/sm_bench $(BENCH_ARGS)"; \
	    python3 tools/bench.py --bin $(BUILD)/bench/sm_bench $(BENCH_ARGS); \
	else \
	    echo "$(BUILD)/bench/sm_bench $(or $(BENCH_ARGS),--list)"; \
	    $(BUILD)/bench/sm_bench $(or $(BENCH_ARGS),--list); \
	fi

clean:
	$(call say,remove the build directories)
	rm -rf $(BUILD) $(ASAN_BUILD) $(TSAN_BUILD) $(FUZZ_BUILD)
