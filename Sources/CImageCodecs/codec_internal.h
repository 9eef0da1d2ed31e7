// Shared by the codec .c files; not part of the public header.
#ifndef CYTO_IMAGE_CODECS_INTERNAL_H
#define CYTO_IMAGE_CODECS_INTERNAL_H

#include "CImageCodecs.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/// Copies `src` (or "" when NULL) into the caller's message buffer, truncated to `cap`.
__attribute__((visibility("hidden"))) void cyto_set_message(char *dst, size_t cap, const char *src);

#endif
