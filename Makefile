# Builds the kestrel images and runs them in QEMU.
#
#   make [build]     both images: target/images/virt/kestrel.img and
#                    target/images/rpi4/kernel8.img (+ kestrel.elf beside each)
#   make test        host unit tests and the kernel tests in every QEMU
#                    configuration (scripts/run-tests.sh); knobs: T=WORD,
#                    CONFIGS="...", ICOUNT=1, TEST_TIMEOUT=seconds
#   make bench       benchmarks under -icount at 1 and 4 CPUs; a table and
#                    target/bench/results.json (scripts/bench.sh)
#   make qemu        boot the image: BOARD=virt|rpi4 (default virt), CPUS=N and
#                    GIC=2|3 (virt only), ICOUNT=1, ARGS="extra bootargs"
#   make gdb         as make qemu, stopped at the first instruction, with
#                    gdb-multiarch attached
#   make check       clippy for both boards and rustfmt (informational)
#   make clean       cargo clean (keeps the downloaded Pi 4 device tree)
#
# Every target first runs scripts/setup.sh, which installs what is missing
# and costs a few milliseconds when nothing is.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c

BOARD ?= virt
CPUS ?= 4
GIC ?= 3
ARGS ?=
ICOUNT ?=

# scripts/run-tests.sh reads these from its environment.
export T CONFIGS ICOUNT TEST_TIMEOUT

TARGET := aarch64-unknown-none-softfloat
ELF := $(TARGET)/release/kestrel
IMAGES := target/images

# rust-objcopy comes with the llvm-tools component, in the toolchain's
# host directory. Expanded when a recipe runs, i.e. after setup.sh.
OBJCOPY = $(firstword $(wildcard \
	$(shell rustc --print sysroot)/lib/rustlib/*/bin/rust-objcopy))

# The image and the QEMU options of the board that `make qemu` boots.
ifeq ($(BOARD),virt)
IMAGE := $(IMAGES)/virt/kestrel.img
QEMU_OPTS := --board virt --gic $(GIC) --cpus $(CPUS)
else ifeq ($(BOARD),rpi4)
IMAGE := $(IMAGES)/rpi4/kernel8.img
QEMU_OPTS := --board rpi4
else
$(error BOARD must be virt or rpi4, not '$(BOARD)')
endif
QEMU_OPTS += $(if $(filter 1,$(ICOUNT)),--icount)
QEMU_OPTS += $(if $(ARGS),--append '$(ARGS)')

.PHONY: build setup test bench qemu gdb check clean
.DEFAULT_GOAL := build

setup:
	@scripts/setup.sh

# build-board BOARD IMAGE-NAME: one cargo build for BOARD, copied out of the
# shared target directory before the next board's build replaces it. The
# raw binary is what QEMU and the Pi firmware load; the ELF keeps the
# symbols for gdb.
# Each board builds in its own target directory, so that switching boards
# does not recompile the kernel every time.
define build-board
	KESTREL_BOARD=$(1) cargo build --release --target-dir target/board-$(1)
	@mkdir -p $(IMAGES)/$(1)
	$(OBJCOPY) -O binary target/board-$(1)/$(ELF) $(IMAGES)/$(1)/$(2)
	@cp target/board-$(1)/$(ELF) $(IMAGES)/$(1)/kestrel.elf
endef

# The debug image: virt with debug assertions (lock order, invariants),
# for one configuration of `make test`.
define build-debug
	KESTREL_BOARD=virt cargo build --target-dir target/board-virt-debug
	@mkdir -p $(IMAGES)/virt-debug
	$(OBJCOPY) -O binary target/board-virt-debug/$(TARGET)/debug/kestrel \
		$(IMAGES)/virt-debug/kestrel.img
	@cp target/board-virt-debug/$(TARGET)/debug/kestrel $(IMAGES)/virt-debug/kestrel.elf
endef

build: setup
	@[ -n "$(OBJCOPY)" ] \
		|| { echo "rust-objcopy not found: rustup component add llvm-tools"; exit 1; }
	$(call build-board,virt,kestrel.img)
	$(call build-board,rpi4,kernel8.img)
	$(call build-debug)

test: build
	scripts/run-tests.sh

bench: build
	scripts/bench.sh

qemu: build
	scripts/qemu.sh $(QEMU_OPTS) $(IMAGE)

# QEMU waits on port 1234 with the CPUs stopped; gdb attaches once the port
# is listening (0x04D2 = 1234 in /proc/net/tcp, state 0A = LISTEN). QEMU's
# console shares the terminal with gdb; QEMU ends when gdb does.
gdb: build
	@scripts/setup.sh --gdb
	scripts/qemu.sh $(QEMU_OPTS) --gdb $(IMAGE) </dev/null & qemu=$$!; \
	trap 'kill $$qemu 2>/dev/null || true' EXIT; \
	for _ in $$(seq 50); do \
		grep -qs ':04D2 [0-9A-F:]* 0A ' /proc/net/tcp /proc/net/tcp6 && break; \
		kill -0 $$qemu 2>/dev/null || exit 1; \
		sleep 0.1; \
	done; \
	gdb-multiarch $(IMAGES)/$(BOARD)/kestrel.elf \
		-ex 'target remote :1234' -ex 'break *_start'

# Informational: reports problems without failing.
check: setup
	-KESTREL_BOARD=virt cargo clippy
	-KESTREL_BOARD=rpi4 cargo clippy
	-cargo fmt --check

# cargo clean deletes all of target/, including the Pi 4 device tree that
# setup.sh downloaded; keep that one across the clean.
clean:
	@keep=$$(mktemp -d); \
	if [ -d target/dtb ]; then mv target/dtb "$$keep/"; fi; \
	cargo clean || status=$$?; \
	if [ -d "$$keep/dtb" ]; then mkdir -p target && mv "$$keep/dtb" target/; fi; \
	rmdir "$$keep"; \
	exit $${status:-0}
