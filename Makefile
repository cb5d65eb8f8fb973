# Makefile - builds and tests Scorewire. `make help` lists the targets.
#
# Layout: every folder's .c files (actor/ ingest/ model/ notify/ store/ app/)
# go into one static library; app/main.c is the daemon; tools/<name>/*.c is
# bin/scorewire-<name>; tests/<module>_test.c is one cmocka binary each
# (tests/<name>_test also links tools/<name>/*.c but main.c, if that exists);
# tests/bench/<part>_bench.c one benchmark each; tests/fuzz/<name>_fuzz.c one
# libFuzzer target each. New files need no edit here.
#
# Variants build side by side: release objects in build/release with
# programs in bin/, sanitizer builds in build/asan and build/tsan with their
# programs in build/<variant>/bin. Tests find programs through $SCOREWIRE_BIN.

SHELL := /bin/bash
.DEFAULT_GOAL := all
.DELETE_ON_ERROR:
.SECONDARY:

VARIANT ?= release
BUILD := build/$(VARIANT)
ifeq ($(VARIANT),release)
BIN := bin
else
BIN := $(BUILD)/bin
endif

CC ?= cc
PKGS := expat libpq libwebsockets
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CMOCKA_LIBS := $(shell pkg-config --libs cmocka 2>/dev/null || echo -lcmocka)
# jemalloc: buffers here are allocated by one actor's thread and freed by
# another's (an update made by a match actor, freed by notify and store);
# glibc's arenas serialize those frees on a lock, jemalloc's thread caches
# do not (README, Dependencies, has the figures). Sanitizer builds keep
# their own allocator.
MALLOC_LIBS :=

WARN := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
	-Wformat=2 -Wno-format-nonliteral -Werror
CFLAGS ?= -O2 -g
# -DXML_DTD: expat declares its billion-laughs setters only with it.
# -DNDEBUG keeps lws_config.h from defining _DEBUG; our own assertions use
# ACTOR_ASSERT, which stays on in every build.
CPPFLAGS_ALL := -I. -D_GNU_SOURCE -DXML_DTD -DNDEBUG $(PKG_CFLAGS) $(CPPFLAGS)
CFLAGS_ALL := -std=c11 -pthread -fno-omit-frame-pointer $(WARN) $(CFLAGS)
LDFLAGS_ALL := -pthread $(LDFLAGS)

ifeq ($(VARIANT),release)
MALLOC_LIBS := $(shell pkg-config --libs jemalloc 2>/dev/null)
endif
ifeq ($(VARIANT),asan)
CFLAGS_ALL += -fsanitize=address,undefined -fno-sanitize-recover=undefined
LDFLAGS_ALL += -fsanitize=address,undefined
endif
ifeq ($(VARIANT),tsan)
CFLAGS_ALL += -fsanitize=thread
LDFLAGS_ALL += -fsanitize=thread
endif

STAGES := actor ingest model notify store app
LIB_SRCS := $(filter-out app/main.c,$(foreach d,$(STAGES),$(wildcard $(d)/*.c)))
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/%.o)
LIB := $(BUILD)/libscorewire.a

TOOL_DIRS := $(patsubst tools/%/,%,$(sort $(dir $(wildcard tools/*/*.c))))
TOOLS := $(TOOL_DIRS:%=$(BIN)/scorewire-%)
PROGRAMS := $(BIN)/scorewire $(TOOLS)

TEST_SRCS := $(wildcard tests/*_test.c)
TESTS := $(TEST_SRCS:tests/%.c=$(BUILD)/tests/%)
TEST_SUPPORT := $(filter-out $(TEST_SRCS),$(wildcard tests/*.c))
TEST_SUPPORT_OBJS := $(TEST_SUPPORT:%.c=$(BUILD)/%.o)
BENCH_SRCS := $(wildcard tests/bench/*_bench.c)
BENCHES := $(BENCH_SRCS:tests/bench/%.c=$(BUILD)/bench/%)
# The parts tools/run-bench.sh runs: <part>_bench and <part>_bench.py,
# whichever exist. Any other bench is built for a part's script to run
# (loopback_bench, the kernel's limit notify_bench.py measures against).
BENCH_PARTS := runtime ingest model store notify

ALL_OBJS := $(LIB_OBJS) $(BUILD)/app/main.o $(TEST_SUPPORT_OBJS) \
	$(foreach t,$(TOOL_DIRS),$(patsubst %.c,$(BUILD)/%.o,$(wildcard tools/$(t)/*.c))) \
	$(TEST_SRCS:%.c=$(BUILD)/%.o) $(BENCH_SRCS:%.c=$(BUILD)/%.o)

TIMEOUT ?= 300

# `make V=1` shows the commands.
V ?= 0
ifeq ($(V),0)
Q := @
say = @printf '  %-5s %s\n' $(1) $(2)
else
Q :=
say = @true
endif
export SCOREWIRE_BIN := $(abspath $(BIN))
export SCOREWIRE_ROOT := $(abspath .)

.PHONY: all deps deps-test run test asan tsan unit integration browser \
	fuzz fuzz-run bench $(BENCH_PARTS:%=bench-%) bench-journal format clean help

all: $(PROGRAMS)

help:
	@echo "make            build bin/scorewire and the tools"
	@echo "make run        set up and start the whole demo (PostgreSQL, daemon, feed)"
	@echo "make test       install what is missing, build, run every test"
	@echo "make asan|tsan  build and run unit and integration tests under sanitizers"
	@echo "make bench      run every benchmark; make bench-<part> one of: $(BENCH_PARTS)"
	@echo "make fuzz       build the libFuzzer targets (clang); fuzz-run runs them"
	@echo "make deps       install the Debian packages needed to build and run"
	@echo "make format     clang-format every C file"

deps:
	@tools/deps.sh build

deps-test:
	@tools/deps.sh test

$(BUILD)/%.o: %.c
	@mkdir -p $(@D)
	$(call say,CC,$<)
	$(Q)$(CC) $(CPPFLAGS_ALL) $(CFLAGS_ALL) -MMD -MP -c $< -o $@

$(LIB): $(LIB_OBJS)
	@mkdir -p $(@D)
	@rm -f $@
	$(call say,AR,$@)
	$(Q)ar rcs $@ $^

$(BIN)/scorewire: $(BUILD)/app/main.o $(LIB)
	@mkdir -p $(@D)
	$(call say,LINK,$@)
	$(Q)$(CC) $(LDFLAGS_ALL) -o $@ $^ $(PKG_LIBS) $(MALLOC_LIBS) -lm

# Objects of a list of .c files, written without `%`: in a pattern rule's
# prerequisites make replaces every `%` with the stem, even inside $$(...).
objs_of = $(addprefix $(BUILD)/,$(addsuffix .o,$(basename $(1))))

.SECONDEXPANSION:
$(BIN)/scorewire-%: $$(call objs_of,$$(wildcard tools/$$*/*.c)) $(LIB)
	@mkdir -p $(@D)
	$(call say,LINK,$@)
	$(Q)$(CC) $(LDFLAGS_ALL) -o $@ $^ $(PKG_LIBS) $(MALLOC_LIBS) -lm

$(BUILD)/tests/%_test: $(BUILD)/tests/%_test.o $(TEST_SUPPORT_OBJS) \
		$$(call objs_of,$$(filter-out tools/$$*/main.c,$$(wildcard tools/$$*/*.c))) \
		$(LIB)
	@mkdir -p $(@D)
	$(call say,LINK,$@)
	$(Q)$(CC) $(LDFLAGS_ALL) -o $@ $^ $(PKG_LIBS) $(CMOCKA_LIBS) $(MALLOC_LIBS) -lm

$(BUILD)/bench/%_bench: $(BUILD)/tests/bench/%_bench.o $(LIB)
	@mkdir -p $(@D)
	$(call say,LINK,$@)
	$(Q)$(CC) $(LDFLAGS_ALL) -o $@ $^ $(PKG_LIBS) $(MALLOC_LIBS) -lm

# ---- tests ----------------------------------------------------------------

test: deps-test
	@$(MAKE) --no-print-directory unit integration browser fuzz-run

unit: $(TESTS)
	@tools/run-tests.sh unit $(TIMEOUT) $(TESTS)

integration: all
	@tools/run-tests.sh integration $(TIMEOUT)

browser: all
	@tools/run-tests.sh browser $(TIMEOUT)

asan tsan: deps-test
	@$(MAKE) --no-print-directory VARIANT=$@ unit integration

# ---- fuzzing (clang's libFuzzer) ------------------------------------------

FUZZ_SRCS := $(wildcard tests/fuzz/*_fuzz.c)
FUZZ_DIR := build/fuzz
FUZZERS := $(FUZZ_SRCS:tests/fuzz/%.c=$(FUZZ_DIR)/%)
# ingest uses the shared messages of model/update.h and store/store.h
FUZZ_LIB_SRCS := $(filter actor/% ingest/% model/% store/%,$(LIB_SRCS))
FUZZ_FLAGS := -fsanitize=fuzzer,address,undefined -fno-omit-frame-pointer -g -O1
FUZZ_SECONDS ?= 30

fuzz: $(FUZZERS)

# A target takes in whole (#include) the .c files of what the fuzz build does
# not link, notify/ or a tool's: those, and the headers of the tools and of
# tests/fuzz/, are prerequisites too, or a fix there would leave the fuzzer
# stale.
fuzz_includes = $(shell sed -n 's/^\#include "\(.*\.c\)".*/\1/p' $(1))
$(FUZZ_DIR)/%_fuzz: tests/fuzz/%_fuzz.c $(FUZZ_LIB_SRCS) \
		$(wildcard */*.h tests/fuzz/*.h tools/*/*.h) \
		$$(call fuzz_includes,tests/fuzz/$$*_fuzz.c)
	@mkdir -p $(@D)
	clang $(CPPFLAGS_ALL) -std=c11 -pthread $(FUZZ_FLAGS) -o $@ $< \
		$(FUZZ_LIB_SRCS) $(PKG_LIBS) -lm

fuzz-run: fuzz
	@tools/run-tests.sh fuzz $(FUZZ_SECONDS) $(FUZZERS)

# ---- benchmarks -------------------------------------------------------------

bench: all $(BENCHES)
	@for p in $(BENCH_PARTS); do tools/run-bench.sh $$p || exit 1; done

$(BENCH_PARTS:%=bench-%): bench-%: all $(BENCHES)
	@tools/run-bench.sh $*

# The local journal (--journal-dir) is not built yet: nothing to measure.
bench-journal:
	@echo "bench-journal: Scorewire has no local journal yet (--journal-dir is reserved); nothing to measure" >&2; exit 1

# ---- the demo -----------------------------------------------------------------

run: deps
	@$(MAKE) --no-print-directory all
	@tools/run-demo.sh

format:
	clang-format -i $(shell git ls-files '*.c' '*.h')

clean:
	rm -rf build bin

-include $(ALL_OBJS:.o=.d)
