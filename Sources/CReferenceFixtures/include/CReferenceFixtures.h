// The Keras reference vectors of Tests/Fixtures/reference, compiled into the binary
// (C23 #embed), so `cytocl verify` and the tests need no file beside the program.
#ifndef CREFERENCEFIXTURES_H
#define CREFERENCEFIXTURES_H
#include <stddef.h>

typedef struct {
    const char *name;            // file name in Tests/Fixtures/reference
    const unsigned char *bytes;  // the safetensors file, byte for byte
    size_t size;
} cytocl_reference_fixture;

// Number of embedded files.
size_t cytocl_reference_fixture_count(void);
// File `i` (0 <= i < count).
cytocl_reference_fixture cytocl_reference_fixture_at(size_t i);

#endif
