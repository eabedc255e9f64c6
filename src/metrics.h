/* SPDX-License-Identifier: Apache-2.0 */
/* metrics.h: Prometheus text exposition of the HTTP and build metrics.
 *
 * Counters are lock-free atomics in fixed arrays indexed by route, so observing a
 * request costs a few relaxed increments. Other subsystems render their own metrics
 * (health.c for the readiness checks) into the same buffer. */
#pragma once
#include "compat.h"
#include "mem.h"
#include "router.h"

/* Borrows routes for the process's life. */
void alm_metrics_init(const struct alm_route *routes, size_t n);
void alm_metrics_observe_http(const struct alm_route *route, int status, double seconds);
/* Counts a connection the HTTP server refused or cut off (reason: one of
 * ALM_HTTP_REFUSAL_REASONS; others are not counted). */
void alm_metrics_observe_refusal(const char *reason);
/* Appends almanac_build_info and the HTTP metrics. */
void alm_metrics_render(struct alm_buf *out, const char *svc);
