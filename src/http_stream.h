/* SPDX-License-Identifier: Apache-2.0 */
/* http_stream.h: an answer whose body another thread writes while it is sent
 * (Server-Sent Events).
 *
 * The handler opens the stream (the status and headers go out at once) and hands it to a
 * producer thread. libmicrohttpd pulls the body through a reader callback: when nothing
 * is pending the reader suspends the connection, so no server thread spins or waits, and
 * the producer's next write resumes it. The stream is shared by the producer and the
 * response, under one lock, and freed by whichever lets go last; once the response is
 * gone (client disconnected, or the answer was sent) writes return false, which is how
 * the producer learns to stop. */
#pragma once
#include "compat.h"
#include "http_server.h"

struct alm_stream;

/* Queues the answer (status, content type, the usual headers) with a body to come. */
struct alm_stream *alm_reply_stream(struct alm_req *req, int status, const char *content_type);
/* Appends bytes to the body; false once the client is gone (nothing is queued then). */
bool alm_stream_write(struct alm_stream *s, const char *data, size_t n);
/* Whether the client is still there. */
bool alm_stream_alive(struct alm_stream *s);
/* Ends the body after what was written, and lets go of the producer's side. */
void alm_stream_end(struct alm_stream *s);
/* For a suspended request only (libmicrohttpd does not watch its socket then): whether
 * the client closed its side of the connection. */
bool alm_req_peer_closed(struct alm_req *req);
