# SPDX-License-Identifier: Apache-2.0
# Compiles db/migrations/NNNN_name.sql into a C array, so the binary carries its schema
# and the expected schema version is a constant. Run with -DSRC=dir -DOUT=file.c.
# Versions must increase; a gap is allowed (numbers are handed out before branches
# merge). A migration's first line may say "-- compatible-from: N": binaries that need
# schema N or newer still run on the schema this migration makes (docs/upgrades.md);
# without it, the migration breaks every older binary (N = its own version).
file(GLOB files "${SRC}/[0-9][0-9][0-9][0-9]_*.sql")
list(SORT files)
set(body "/* Generated from db/migrations by cmake/embed_migrations.cmake. */\n#include \"schema.h\"\n\nconst struct alm_migration alm_migrations[] = {\n")
set(previous 0)
foreach(f ${files})
  get_filename_component(name ${f} NAME_WE)
  string(SUBSTRING ${name} 0 4 num)
  math(EXPR version "${num}")
  if(NOT version GREATER previous)
    message(FATAL_ERROR "migration ${name}: versions must increase (after ${previous})")
  endif()
  set(previous ${version})
  set(compat ${version})
  file(STRINGS ${f} first LIMIT_COUNT 1)
  if(first MATCHES "^-- compatible-from: ([0-9]+)")
    set(compat ${CMAKE_MATCH_1})
    if(compat GREATER version)
      message(FATAL_ERROR "migration ${name}: compatible-from ${compat} is after its version")
    endif()
  endif()
  file(READ ${f} hex HEX)
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
  string(APPEND body "    {${version}, ${compat}, \"${name}\", (const char[]){${bytes} 0x00}},\n")
endforeach()
string(APPEND body "};\nconst size_t alm_migration_count = sizeof(alm_migrations) / sizeof(alm_migrations[0]);\n")
file(WRITE ${OUT}.tmp "${body}")
file(COPY_FILE ${OUT}.tmp ${OUT} ONLY_IF_DIFFERENT)
