#ifndef CACHEKIT_LIBPQ_SHIM_H
#define CACHEKIT_LIBPQ_SHIM_H

#include <libpq-fe.h>

#endif
