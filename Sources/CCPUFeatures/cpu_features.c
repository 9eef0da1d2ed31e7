#include "cytocl_cpu_features.h"

int cytocl_cpu_level(void)
{
#if defined(__x86_64__)
    // __builtin_cpu_supports checks CPUID and that the OS saves the vector state (XGETBV).
    __builtin_cpu_init();
    if (__builtin_cpu_supports("x86-64-v4")) return 4;
    if (__builtin_cpu_supports("x86-64-v3")) return 3;
#endif
    return 0;
}
