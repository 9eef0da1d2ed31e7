// Helpers shared by the codec .c files.
#include "codec_internal.h"

void cyto_set_message(char *dst, size_t cap, const char *src) {
    if (!dst || cap == 0) return;
    snprintf(dst, cap, "%s", src ? src : "");
}
