# kvmpp: the one entry point. `make help` lists the targets.
#
# Everything builds into build/ except the kernel modules, which Kbuild builds
# next to their sources (kernel/*.ko).

SHELL := /bin/bash
BUILD := $(CURDIR)/build
ENVS := kvmpp-svm reference-svm kvmpp-vmx reference-vmx
# make test ENV=kvmpp-svm T='system.*'
ENV ?= kvmpp-svm
T ?= *

.PHONY: all help deps build modules libkvmpp selftests unit initramfs run check test install clean bench

all: build

help:
	@echo "make run          main job: build, boot QEMU (SVM), load kvmpp, run the selftests"
	@echo "make check        full suite: unit tests, then selftests in $(ENVS)"
	@echo "make test ENV=E T=GLOBS   one environment, tests matching GLOBS (e.g. 'system.*')"
	@echo "make build        modules, selftests and the test machine's initramfs"
	@echo "make unit         CMocka unit tests of kernel logic, and libkvmpp's own tests"
	@echo "make bench        path-length benchmarks, kvmpp vs the reference, in QEMU (SVM) and Bochs (VMX)"
	@echo "make install      libkvmpp: headers, static and shared library, pkg-config, CMake (PREFIX=)"
	@echo "make deps         install Debian packages and unpack the guest kernel"
	@echo "make clean        remove build products"

deps:
	@scripts/setup-deps.sh
	@scripts/guest-kernel.sh >/dev/null

modules: deps
	@kdir=$$(scripts/guest-kernel.sh | sed -n 's/^KDIR=//p') && \
		$(MAKE) --no-print-directory -C "$$kdir" M=$(CURDIR)/kernel modules

libkvmpp: deps
	@$(MAKE) --no-print-directory -C libkvmpp OUT=$(BUILD)/libkvmpp

selftests: deps
	@$(MAKE) --no-print-directory -C selftests OUT=$(BUILD)/selftests

initramfs: modules selftests
	@scripts/build-initramfs.sh $(BUILD)/initramfs.cpio.gz

build: initramfs libkvmpp

# Kernel logic (CMocka) and the library's own tests; each writes a result file.
unit: deps
	@$(MAKE) --no-print-directory -C kernel/tests OUT=$(BUILD)/unit check
	@$(MAKE) --no-print-directory -C libkvmpp OUT=$(BUILD)/libkvmpp check

# make install [PREFIX=/usr/local] [DESTDIR=...]: libkvmpp's headers, libraries,
# pkg-config file and CMake package.
install: libkvmpp
	@$(MAKE) --no-print-directory -C libkvmpp OUT=$(BUILD)/libkvmpp install

run: build
	@scripts/run-env.sh kvmpp-svm

test: build
	@scripts/run-env.sh $(ENV) '$(T)'

check: build
	@scripts/check.sh $(ENVS)

# Not part of check: a table, not a verdict (Documentation/performance.md).
bench: modules selftests
	@$(MAKE) --no-print-directory -C bench OUT=$(BUILD)/bench
	@BENCH_BIN=$(BUILD)/bench/kvmpp-bench scripts/build-initramfs.sh $(BUILD)/bench/initramfs.cpio.gz
	@scripts/bench.sh

clean:
	rm -rf $(BUILD)/selftests $(BUILD)/libkvmpp $(BUILD)/unit $(BUILD)/run $(BUILD)/initramfs.cpio.gz \
		$(BUILD)/bench $(BUILD)/fuzz $(BUILD)/fuzz.log $(BUILD)/install $(BUILD)/examples
	@kdir=$$(scripts/guest-kernel.sh 2>/dev/null | sed -n 's/^KDIR=//p'); \
		[ -z "$$kdir" ] || $(MAKE) --no-print-directory -C "$$kdir" M=$(CURDIR)/kernel clean
