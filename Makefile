# mlc-pipe: one non-recursive Makefile.
#
#   make            build build/bin/mlc-* and build/libmlc.a
#   make test       run every test; the last line is "N passed, N failed"
#   make asan       the same suite under AddressSanitizer + UBSan (build-asan/)
#   make deps       install the Debian packages the project needs
#   make demo       run the pipeline on the bundled model
#   make bench      run the benchmarks under tests/bench/ (prints figures)
#   make fuzz       build the libFuzzer harnesses (tests/fuzz/) with clang and
#                   ASan+UBSan in build-fuzz/ and run each FUZZ_SECONDS (60)
#   make install    PREFIX=/usr/local DESTDIR= (tools, manual pages, libmlc.a,
#                   headers, mlc-pipe.pc, scripts, bash completion)
#
# Sources are found by wildcard, one folder deep: a new .c file in common/,
# formats/ or a room below them (common/lower/, common/emit/, common/engine/,
# formats/tokenizer/) joins the library (and a .cpp file in a room, compiled
# with CXX), a new shaders/*.comp is compiled to SPIR-V and embedded in the
# library, a new tools/mlc-*.c becomes a tool and a new tests/unit/test_*.c a
# unit test, without editing this file. scripts/check-layers (run by the
# tests) keeps the folders' layers.

BUILD    ?= build
PREFIX   ?= /usr/local
DESTDIR  ?=
CC       ?= cc
CXX      ?= c++
OPT      ?= -O2 -g
SANITIZE ?=

PKGS := msgpack jansson libcurl openssl libarchive libpcre2-8 libutf8proc libmicrohttpd cairo
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
# The Vulkan loader, and SPIRV-Tools (static C++ archives only on Debian 12:
# hence -lstdc++ when the C compiler links).
GPU_LIBS   := $(shell pkg-config --libs vulkan SPIRV-Tools 2>/dev/null) -lstdc++

CPPFLAGS += -I. -D_GNU_SOURCE $(PKG_CFLAGS)
CFLAGS   += -std=c11 $(OPT) -Wall -Wextra -fno-strict-aliasing $(SANITIZE) -MMD -MP
CXXFLAGS += -std=c++17 $(OPT) -Wall -Wextra $(SANITIZE) -MMD -MP
LDFLAGS  += $(SANITIZE) -pthread
LDLIBS   += $(PKG_LIBS) $(GPU_LIBS) -lm

LIB_SRC  := $(sort $(wildcard common/*.c common/*/*.c formats/*.c formats/*/*.c))
LIB_CXX  := $(sort $(wildcard common/*/*.cpp))
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/obj/%.o) $(LIB_CXX:%.cpp=$(BUILD)/obj/%.o) $(BUILD)/obj/gen/shader_blobs.o
LIB      := $(BUILD)/libmlc.a

# GLSL compute kernels, compiled to SPIR-V at build time and embedded in the
# library (scripts/embed-shaders), so that mlc-emit needs no files beside it.
GLSLC       ?= glslc
SHADER_SRC  := $(sort $(wildcard shaders/*.comp))
SHADERS     := $(SHADER_SRC:shaders/%.comp=$(BUILD)/shaders/%.spv)

TOOL_SRC := $(sort $(wildcard tools/mlc-*.c))
TOOLS    := $(TOOL_SRC:tools/%.c=$(BUILD)/bin/%)

UNIT_SRC := $(sort $(wildcard tests/unit/test_*.c))
UNITS    := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)

# Helper programs used by tests and benchmarks (fixture generators...).
HELPER_SRC := $(sort $(wildcard tests/helpers/*.c))
HELPERS    := $(HELPER_SRC:tests/helpers/%.c=$(BUILD)/tests/%)

# libFuzzer harnesses, one per parser entry point; built only by `make fuzz`
# (clang, a sanitized library of their own in $(FUZZ_BUILD)).
FUZZ_SRC     := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZERS      := $(FUZZ_SRC:tests/fuzz/%.c=$(BUILD)/fuzz/%)
FUZZ_BUILD   ?= build-fuzz
FUZZ_CC      ?= clang
FUZZ_CXX     ?= clang++
FUZZ_SECONDS ?= 60
FUZZ_JOBS    ?= 1

MAN1 := $(sort $(wildcard man/*.1))
MAN5 := $(sort $(wildcard man/*.5))

.PHONY: all test check asan deps demo bench install uninstall clean fuzz fuzz-build fuzzers
.DELETE_ON_ERROR:
# keep object files of tools and tests (otherwise make deletes them as
# intermediates and rebuilds them every time)
.SECONDARY:

all: $(TOOLS) $(LIB) $(SHADERS)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

$(BUILD)/obj/%.o: %.cpp
	@mkdir -p $(@D)
	$(CXX) $(CPPFLAGS) $(CXXFLAGS) -c $< -o $@

$(BUILD)/shaders/%.spv: shaders/%.comp
	@mkdir -p $(@D)
	$(GLSLC) --target-env=vulkan1.1 -O -MD -MF $@.d -o $@ $<

$(BUILD)/gen/shader_blobs.c: $(SHADERS) scripts/embed-shaders
	@mkdir -p $(@D)
	scripts/embed-shaders $(SHADERS) >$@.tmp && mv $@.tmp $@

$(BUILD)/obj/gen/shader_blobs.o: $(BUILD)/gen/shader_blobs.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

$(LIB): $(LIB_OBJ)
	@mkdir -p $(@D)
	rm -f $@
	ar rcs $@ $^

$(BUILD)/bin/%: $(BUILD)/obj/tools/%.o $(LIB)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) $< $(LIB) $(LDLIBS) -o $@

$(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(LIB)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) $< $(LIB) $(LDLIBS) -o $@

$(BUILD)/tests/%: $(BUILD)/obj/tests/helpers/%.o $(LIB)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) $< $(LIB) $(LDLIBS) -o $@

$(BUILD)/fuzz/%: tests/fuzz/%.c $(LIB)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -fsanitize=fuzzer $< $(LIB) $(LDLIBS) -pthread -o $@

fuzzers: $(FUZZERS)

# The harnesses' library: coverage for libFuzzer, ASan+UBSan to turn every
# memory error, leak and undefined behaviour into a finding.
fuzz-build:
	$(MAKE) BUILD=$(FUZZ_BUILD) CC=$(FUZZ_CC) CXX=$(FUZZ_CXX) OPT="-O1 -g -fno-omit-frame-pointer" \
		SANITIZE="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fsanitize=fuzzer-no-link" fuzzers

# Seeds come from the fixtures (some through the normal build's tools).
fuzz: all $(HELPERS) fuzz-build
	@MLC_BUILD=$(abspath $(BUILD)) MLC_FUZZ_BUILD=$(abspath $(FUZZ_BUILD)) \
		tests/fuzz/run --seconds $(FUZZ_SECONDS) --jobs $(FUZZ_JOBS)

test check: all $(UNITS) $(HELPERS)
	@MLC_BUILD=$(abspath $(BUILD)) tests/run

# The sanitizer build lives in its own directory so that it never mixes
# objects with the normal one.
asan:
	$(MAKE) BUILD=build-asan OPT="-O1 -g -fno-omit-frame-pointer" \
		SANITIZE="-fsanitize=address,undefined -fno-sanitize-recover=undefined" \
		ASAN_OPTIONS=allocator_may_return_null=1:detect_leaks=1 MLC_FUZZ_SECONDS=0 test

deps:
	scripts/install-deps

demo: all
	scripts/demo

bench: all $(HELPERS)
	@MLC_BUILD=$(abspath $(BUILD)) tests/bench/run

# What a program that links libmlc.a needs: the public headers keep their
# paths under include/mlc-pipe/ (#include "common/stream.h"), and
# pkg-config names the libraries they use.
VERSION  := $(shell sed -n 's/^\#define MLC_VERSION "\(.*\)"/\1/p' common/version.h)
HEADERS  := $(sort $(wildcard common/*.h common/*/*.h formats/*.h formats/*/*.h))
INCDIR   := $(PREFIX)/include/mlc-pipe
LIBDIR   := $(PREFIX)/lib
DATADIR  := $(PREFIX)/share/mlc-pipe
COMPDIR  := $(PREFIX)/share/bash-completion/completions
SCRIPTS  := scripts/pipeline.sh scripts/calibrate.sh scripts/model.mk scripts/build.ninja
TOOL_NAMES := $(TOOLS:$(BUILD)/bin/%=%)

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1 $(DESTDIR)$(PREFIX)/share/man/man5
	install -m 755 $(TOOLS) $(DESTDIR)$(PREFIX)/bin/
	$(if $(MAN1),install -m 644 $(MAN1) $(DESTDIR)$(PREFIX)/share/man/man1/)
	$(if $(MAN5),install -m 644 $(MAN5) $(DESTDIR)$(PREFIX)/share/man/man5/)
	install -d $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(DATADIR) $(DESTDIR)$(COMPDIR)
	install -m 644 $(LIB) $(DESTDIR)$(LIBDIR)/
	printf '%s\n' 'prefix=$(PREFIX)' 'includedir=$${prefix}/include/mlc-pipe' 'libdir=$${prefix}/lib' '' \
		'Name: mlc-pipe' 'Description: HuggingFace models to MLC-LLM weights and model libraries, and their engine' \
		'Version: $(VERSION)' 'Requires: $(PKGS)' 'Cflags: -I$${includedir} -D_GNU_SOURCE' \
		'Libs: -L$${libdir} -lmlc -lm -pthread' >$(DESTDIR)$(LIBDIR)/pkgconfig/mlc-pipe.pc
	for h in $(HEADERS); do install -D -m 644 $$h $(DESTDIR)$(INCDIR)/$$h || exit 1; done
	install -m 755 scripts/pipeline.sh scripts/calibrate.sh $(DESTDIR)$(DATADIR)/
	install -m 644 scripts/model.mk scripts/build.ninja $(DESTDIR)$(DATADIR)/
	for t in $(TOOL_NAMES); do install -m 644 scripts/bash-completion $(DESTDIR)$(COMPDIR)/$$t || exit 1; done

uninstall:
	rm -f $(TOOLS:$(BUILD)/bin/%=$(DESTDIR)$(PREFIX)/bin/%)
	rm -f $(MAN1:man/%=$(DESTDIR)$(PREFIX)/share/man/man1/%) $(MAN5:man/%=$(DESTDIR)$(PREFIX)/share/man/man5/%)
	rm -f $(DESTDIR)$(LIBDIR)/libmlc.a $(DESTDIR)$(LIBDIR)/pkgconfig/mlc-pipe.pc
	rm -f $(TOOL_NAMES:%=$(DESTDIR)$(COMPDIR)/%)
	rm -rf $(DESTDIR)$(INCDIR) $(DESTDIR)$(DATADIR)

clean:
	rm -rf build build-asan build-fuzz

-include $(shell find $(BUILD)/obj $(BUILD)/shaders -name '*.d' 2>/dev/null)
