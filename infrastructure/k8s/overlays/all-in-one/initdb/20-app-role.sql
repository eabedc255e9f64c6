-- SPDX-License-Identifier: Apache-2.0
-- The rights of the application role `almanac` in a database whose schema the owner
-- role `almanac_owner` creates (`almanac migrate` as the owner). The api, worker and beat
-- read and write rows; they cannot create, alter or drop anything, so a flaw in them
-- cannot change the schema. Run by the owner, after the role exists, before migrating
-- (default privileges apply to objects created later). Used by the all-in-one
-- PostgreSQL's first start and by the integration tests (tests/lib/services.mjs).
REVOKE ALL ON DATABASE almanac FROM PUBLIC;
GRANT CONNECT ON DATABASE almanac TO almanac;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO almanac;
ALTER DEFAULT PRIVILEGES FOR ROLE almanac_owner IN SCHEMA public
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO almanac;
ALTER DEFAULT PRIVILEGES FOR ROLE almanac_owner IN SCHEMA public
    GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO almanac;
