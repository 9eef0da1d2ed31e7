// Embeds Tests/Fixtures/reference/*.safetensors (written by scripts/make-reference).
// #embed is C23; clang accepts it in every language mode.
#pragma clang diagnostic ignored "-Wc23-extensions"
#include "CReferenceFixtures.h"

static const unsigned char two_class_257[] = {
#embed "../../Tests/Fixtures/reference/keras_2class_257.safetensors"
};
static const unsigned char six_class_257[] = {
#embed "../../Tests/Fixtures/reference/keras_6class_257.safetensors"
};
static const unsigned char two_class_400[] = {
#embed "../../Tests/Fixtures/reference/keras_2class_400.safetensors"
};

static const cytocl_reference_fixture fixtures[] = {
    {"keras_2class_257.safetensors", two_class_257, sizeof(two_class_257)},
    {"keras_6class_257.safetensors", six_class_257, sizeof(six_class_257)},
    {"keras_2class_400.safetensors", two_class_400, sizeof(two_class_400)},
};
size_t cytocl_reference_fixture_count(void) { return sizeof(fixtures) / sizeof(fixtures[0]); }

cytocl_reference_fixture cytocl_reference_fixture_at(size_t i) { return fixtures[i]; }
