/* SPDX-License-Identifier: Apache-2.0 */
/* redis_tls.h: TLS connections to Redis (rediss://) for hiredis 0.14, which has none.
 * See redis_tls.c: the handshake and certificate check happen in the caller; a relay
 * thread then carries the session, and hiredis talks to it over a socketpair. */
#pragma once
#include "compat.h"
#include "err.h"

/* Connects to host:port, handshakes TLS 1.2+ and verifies the server's certificate
 * against ca_file (NULL: the system's CAs) and host. Returns the local end of the
 * session for redisConnectFd(), or -1 with eb ("TLS: certificate verify failed: ..."). */
int alm_redis_tls_open(const char *host, int port, const char *ca_file, int timeout_ms,
                       struct alm_errbuf *eb) ALM_MUSTCHECK;
