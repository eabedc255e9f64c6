-- compatible-from: 4
-- SPDX-License-Identifier: Apache-2.0
-- The epoch of the job queue: the value of Redis's almanac:epoch key as the beat last saw
-- it. When the key is gone while a value is recorded here, Redis lost its data (restarted
-- without persistence, failed over to an empty replica, flushed) and every job with it;
-- when neither exists, the system is new and nothing was lost.
CREATE TABLE queue_epoch (
    id      int PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    epoch   text NOT NULL,
    seen_at timestamptz NOT NULL DEFAULT now()
);
