/* SPDX-License-Identifier: Apache-2.0 */
/* unit.h: what every cmocka unit test includes. */
#pragma once
#include "compat.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
