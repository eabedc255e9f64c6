/* qdrant.h: the Qdrant REST client (libcurl).
 *
 * One struct alm_qdrant holds one curl handle and so one kept-alive connection; it is
 * used by one thread at a time. Timeouts are libcurl's, enforced on the socket. */
#pragma once
#include "compat.h"
#include "config.h"
#include "err.h"

struct alm_qdrant;

/* Returns a new client for cfg->qdrant_url (which must be set); free with alm_qdrant_free. */
struct alm_qdrant *alm_qdrant_new(const struct alm_config *cfg);
void alm_qdrant_free(struct alm_qdrant *q);
/* GET /readyz: ALM_OK when Qdrant answers 2xx within timeout_ms. */
enum alm_err alm_qdrant_readyz(struct alm_qdrant *q, int timeout_ms,
                               struct alm_errbuf *eb) ALM_MUSTCHECK;
