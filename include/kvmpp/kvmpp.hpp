// SPDX-License-Identifier: GPL-2.0
//
// libkvmpp: a C++20 library for /dev/kvm. Everything in one include.
// Documentation/libkvmpp.md describes the API, the error model and thread
// safety; each header says what its types guarantee.
#pragma once

#include "coalesced.hpp"
#include "error.hpp"
#include "exit.hpp"
#include "fd.hpp"
#include "memory.hpp"
#include "system.hpp"
#include "vcpu.hpp"
#include "vm.hpp"
#include "x86.hpp"
