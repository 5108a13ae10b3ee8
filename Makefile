# convbn-shim build.  `make` builds the shim and the CPU emulation, `make check` runs every
# test that needs no GPU, `make demo` shows what the shim finds in a ResNet-style program.
# Outputs: build/libconvbn_shim.so, build/emu/libcudnn.so.9, build/emu/libcudart.so.13.
# Sanitizer builds: `make asan` (the whole suite under ASan+UBSan, in build/asan/).

BUILD ?= build
SAN ?=
PREFIX ?= /usr/local
DESTDIR ?=

.DEFAULT_GOAL := all
CONFIG_MK := build/config.mk
include $(CONFIG_MK)
$(CONFIG_MK): scripts/deps.sh
	@scripts/deps.sh $@

CC ?= cc
OPT ?= -O2
CFLAGS_BASE := -std=gnu11 $(OPT) -g -Wall -Wextra -Werror -Wno-deprecated-declarations \
               -fPIC $(SAN) -I$(CUDA_HOME)/include
SHIM_CFLAGS := $(CFLAGS_BASE) -fvisibility=hidden -Iinclude $(UNWIND_CFLAGS)
EMU_CFLAGS := $(CFLAGS_BASE) -Itests/emu
TEST_CFLAGS := $(CFLAGS_BASE) -Iinclude -Itests/emu -Itests $(CHECK_CFLAGS)
EMU_DIR := $(abspath $(BUILD)/emu)
EMU_LINK := -L$(EMU_DIR) -Wl,-rpath,$(EMU_DIR) -lcudnn -lcudart

SHIM := $(BUILD)/libconvbn_shim.so
EMU_CUDNN := $(BUILD)/emu/libcudnn.so.9
EMU_CUDART := $(BUILD)/emu/libcudart.so.13

SHIM_SRCS := $(wildcard src/*.c)
SHIM_OBJS := $(SHIM_SRCS:%.c=$(BUILD)/obj/%.o)
EMU_CUDNN_SRCS := $(wildcard tests/emu/cudnn_*.c) tests/emu/dtype.c
EMU_CUDART_SRCS := $(wildcard tests/emu/cudart_*.c)
UNIT_TESTS := $(patsubst tests/unit/%.c,$(BUILD)/tests/unit/%,$(wildcard tests/unit/test_*.c))
EMU_TESTS := $(patsubst tests/emu/%.c,$(BUILD)/tests/emu/%,$(wildcard tests/emu/test_*.c))
E2E_PROGS := $(patsubst tests/e2e/%.c,$(BUILD)/tests/e2e/%,$(wildcard tests/e2e/*.c))

.PHONY: all check demo install asan clean unit-check emu-check e2e-check
all: $(SHIM) $(EMU_CUDNN) $(EMU_CUDART)

$(BUILD)/obj/%.o: %.c $(CONFIG_MK) $(wildcard include/convbn/*.h include/convbn/*.def)
	@mkdir -p $(dir $@)
	$(CC) $(SHIM_CFLAGS) -c $< -o $@

$(SHIM): $(SHIM_OBJS)
	$(CC) $(SAN) -shared -Wl,-soname,libconvbn_shim.so -Wl,--no-undefined -o $@ $^ \
	      $(UNWIND_LIBS) -ldl -lpthread -lm

$(BUILD)/libconvbn_core.a: $(SHIM_OBJS)
	ar rcs $@ $^

$(EMU_CUDNN): $(EMU_CUDNN_SRCS) tests/emu/emu_cudnn.h $(CONFIG_MK)
	@mkdir -p $(dir $@)
	$(CC) $(EMU_CFLAGS) -shared -Wl,-soname,libcudnn.so.9 -o $@ $(EMU_CUDNN_SRCS) -lm
	ln -sf libcudnn.so.9 $(BUILD)/emu/libcudnn.so

$(EMU_CUDART): $(EMU_CUDART_SRCS) tests/emu/emu_cudart.h tests/emu/cudart_internal.h $(CONFIG_MK)
	@mkdir -p $(dir $@)
	$(CC) $(EMU_CFLAGS) -shared -Wl,-soname,libcudart.so.13 -o $@ $(EMU_CUDART_SRCS) -lpthread
	ln -sf libcudart.so.13 $(BUILD)/emu/libcudart.so

$(BUILD)/tests/unit/%: tests/unit/%.c $(BUILD)/libconvbn_core.a
	@mkdir -p $(dir $@)
	$(CC) $(TEST_CFLAGS) $(UNWIND_CFLAGS) -o $@ $< $(BUILD)/libconvbn_core.a \
	      $(CHECK_LIBS) $(UNWIND_LIBS) -ldl -lpthread -lm

$(BUILD)/tests/emu/%: tests/emu/%.c $(EMU_CUDNN) $(EMU_CUDART)
	@mkdir -p $(dir $@)
	$(CC) $(TEST_CFLAGS) -o $@ $< $(EMU_LINK) $(CHECK_LIBS) -lm

# Programs that must not link cuDNN themselves (invariant 5, RTLD_LOCAL loading).
E2E_NO_CUDNN := $(BUILD)/tests/e2e/no_cuda $(BUILD)/tests/e2e/rtld_local
$(E2E_NO_CUDNN): E2E_LIBS := -ldl
E2E_LIBS = $(EMU_LINK) -ldl -lm
$(BUILD)/tests/e2e/%: tests/e2e/%.c tests/e2e/e2e_util.h $(EMU_CUDNN) $(EMU_CUDART)
	@mkdir -p $(dir $@)
	$(CC) $(TEST_CFLAGS) -o $@ $< $(E2E_LIBS)

$(BUILD)/tests/e2e/libmiddle.so: tests/e2e/lib/middle.c tests/e2e/e2e_util.h $(EMU_CUDNN) $(EMU_CUDART)
	@mkdir -p $(dir $@)
	$(CC) $(TEST_CFLAGS) -shared -fvisibility=hidden -o $@ $< $(EMU_LINK) -ldl

unit-check: $(UNIT_TESTS)
	@scripts/run-tests.sh unit $(UNIT_TESTS)

emu-check: $(EMU_TESTS)
	@scripts/run-tests.sh emu $(EMU_TESTS)

e2e-check: all $(E2E_PROGS) $(BUILD)/tests/e2e/libmiddle.so
	@BUILD=$(BUILD) SAN="$(SAN)" tests/e2e/run.sh

check: all
	@$(MAKE) --no-print-directory unit-check emu-check e2e-check

demo: all $(BUILD)/tests/e2e/resnet_seq
	@BUILD=$(BUILD) scripts/demo.sh

asan:
	@$(MAKE) --no-print-directory BUILD=build/asan OPT=-O1 \
	    SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" check

install: $(SHIM)
	install -d $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/include/convbn
	install -m 0755 $(SHIM) $(DESTDIR)$(PREFIX)/lib/libconvbn_shim.so
	install -m 0644 include/convbn/convbn.h $(DESTDIR)$(PREFIX)/include/convbn/convbn.h
	sed 's|@LIBDIR@|$(PREFIX)/lib|' scripts/convbn-run > $(DESTDIR)$(PREFIX)/bin/convbn-run
	chmod 0755 $(DESTDIR)$(PREFIX)/bin/convbn-run

clean:
	rm -rf build
