# Portcullis: top-level build and test entry points. See README.md.

SHELL := /bin/bash
COMMON := . scripts/common.sh
KDIR ?= $(shell $(COMMON); echo "$$(kernel_dir)/linux")
KERNEL_MAKE_FLAGS := LLVM=1 RUSTC=/usr/bin/rustc HOSTRUSTC=/usr/bin/rustc
CARGO ?= cargo
# Cargo's output is cached beside the kernel build, outside the checkout, so a
# fresh clone (as in CI) recompiles only the workspace crates, not every
# dependency.
CARGO_TARGET_DIR ?= $(shell $(COMMON); echo "$$CARGO_TARGET_DIR")
export CARGO_TARGET_DIR

.PHONY: all setup kernel module userspace cargo-test qemu-test host-test job run test clean

all: module userspace

setup:
	bash scripts/setup.sh

kernel:
	bash scripts/build-kernel.sh

module: kernel
	$(MAKE) -C $(KDIR) M=$(CURDIR) $(KERNEL_MAKE_FLAGS) PATH="$$PATH:$$HOME/.cargo/bin" modules
	@echo "module: $(CURDIR)/module/portcullis.ko"

userspace:
	$(CARGO) build --release --manifest-path userspace/Cargo.toml --workspace

cargo-test:
	$(CARGO) test --manifest-path userspace/Cargo.toml --workspace

qemu-test: module userspace
	bash tests/qemu/run-guest-tests

host-test: module userspace
	bash tests/host/run

# The main job: a Debian root file system, its policy, enforcement, a real
# workload and foreign code, in QEMU.
job: module userspace
	bash scripts/main-job

run: setup
	$(MAKE) job

test: setup
	$(MAKE) cargo-test
	$(MAKE) qemu-test
	$(MAKE) host-test
	$(MAKE) job

# Removes this checkout's build output; the shared cache
# (/var/cache/portcullis or $PORTCULLIS_CACHE: kernel, root file system,
# Cargo output) stays.
clean:
	-$(MAKE) -C $(KDIR) M=$(CURDIR) $(KERNEL_MAKE_FLAGS) clean
	rm -rf tests/qemu/out
