/* SPDX-License-Identifier: Apache-2.0 */
/* banned.h: C library functions this project does not call, turned into compile errors.
 *
 * Unbounded copies and formats (strcpy, strcat, sprintf, ...; strncpy and strncat, which
 * do not terminate or truncate silently: use snprintf), conversions that cannot report
 * bad input (atoi, atol, atoll: use strtol or strtoll and check end and errno), and
 * functions that return a static buffer shared by every thread (strtok, gmtime,
 * localtime, ctime, asctime, strerror, strsignal: use strtok_r, gmtime_r, localtime_r,
 * alm_strerror() of err.h, sigdescr_np). A use reads as
 * "sorry_strcpy_is_a_banned_function" in the compiler's message.
 *
 * Included last by compat.h, after the system headers that declare these functions: a
 * declaration seen after the macros would be rewritten by them. */
#pragma once

#define ALM_BANNED(func) sorry_##func##_is_a_banned_function

#undef strcpy
#define strcpy(x, y) ALM_BANNED(strcpy)
#undef strcat
#define strcat(x, y) ALM_BANNED(strcat)
#undef strncpy
#define strncpy(x, y, n) ALM_BANNED(strncpy)
#undef strncat
#define strncat(x, y, n) ALM_BANNED(strncat)

#undef sprintf
#define sprintf(...) ALM_BANNED(sprintf)
#undef vsprintf
#define vsprintf(...) ALM_BANNED(vsprintf)

#undef atoi
#define atoi(x) ALM_BANNED(atoi)
#undef atol
#define atol(x) ALM_BANNED(atol)
#undef atoll
#define atoll(x) ALM_BANNED(atoll)

#undef strtok
#define strtok(x, y) ALM_BANNED(strtok)
#undef gmtime
#define gmtime(t) ALM_BANNED(gmtime)
#undef localtime
#define localtime(t) ALM_BANNED(localtime)
#undef ctime
#define ctime(t) ALM_BANNED(ctime)
#undef asctime
#define asctime(t) ALM_BANNED(asctime)
#undef strerror
#define strerror(e) ALM_BANNED(strerror)
#undef strsignal
#define strsignal(s) ALM_BANNED(strsignal)
