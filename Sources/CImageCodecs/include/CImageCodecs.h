// CImageCodecs: image decoding and encoding for CytoData through libpng, libtiff
// and libjpeg-turbo (Debian: libpng-dev, libtiff-dev, libjpeg-dev).
//
// Why these functions are C
// -------------------------
// libpng and libjpeg report fatal errors by longjmp()-ing out of their error
// callbacks, and Swift cannot call setjmp (a longjmp across Swift frames is
// undefined behaviour). libtiff's field accessors (TIFFGetField/TIFFSetField)
// are C variadic functions, which Swift cannot call either. So the calls that
// need them live in png_codec.c, jpeg_codec.c and tiff_codec.c, and every
// setjmp/longjmp pair stays inside one C function body, never crossing a Swift
// frame. This header only declares what Swift calls.
//
// Conventions: every decoder reads from memory (the caller has read or mapped
// the file), returns a malloc'd buffer that the caller frees with free(), and
// reports failure with a `cyto_status` code plus a message copied into the
// caller's buffer. Nothing here prints to stderr.
#ifndef CYTO_IMAGE_CODECS_H
#define CYTO_IMAGE_CODECS_H

#include <stddef.h>
#include <stdint.h>
// For the constants the Swift side passes through (PNG_COLOR_TYPE_*, COMPRESSION_*,
// SAMPLEFORMAT_*); no libpng or libtiff type appears in the declarations below.
#include <png.h>
#include <tiffio.h>

/// Outcome of a codec call. The Swift side maps these to `DataError` cases.
typedef enum {
    CYTO_OK = 0,
    CYTO_CORRUPT = 1,       // the data is damaged or not valid for the format
    CYTO_TRUNCATED = 2,     // the data ends before the image does
    CYTO_UNSUPPORTED = 3,   // valid file, but a pixel format we cannot convert to RGB
    CYTO_TOO_LARGE = 4,     // width * height above the caller's limit
    CYTO_NO_MEMORY = 5,
    CYTO_IO = 6             // writing failed
} cyto_status;

/// A decoded image: 8-bit RGB, interleaved, row-major, malloc'd.
typedef struct {
    unsigned char *pixels;
    uint32_t width;
    uint32_t height;
    /// TIFF: the Orientation tag (1-8) of the pixels, which are returned as stored (the
    /// caller turns them, as for a JPEG's EXIF orientation); 0 from the other decoders.
    uint16_t orientation;
} cyto_rgb;

/* PNG */

/// Decodes a PNG of any colour type and depth to 8-bit RGB: palettes expanded,
/// grey replicated, 16-bit reduced by dropping the low byte (as PIL does), alpha
/// and tRNS dropped (the first three channels are kept). No gamma conversion:
/// the stored values are returned, like the paper's Python loaders.
cyto_status cyto_png_decode(const unsigned char *data, size_t size, uint64_t max_pixels,
                            cyto_rgb *out, char *msg, size_t msgcap);

/// Encodes a PNG into memory. `color_type` is a PNG_COLOR_TYPE_* value; `depth`
/// is 8 or 16 (16-bit samples are given as native-endian uint16); for a palette
/// image `palette` holds `palette_count` RGB triples and `data` one index byte per pixel.
cyto_status cyto_png_encode(const void *data, uint32_t width, uint32_t height, int color_type,
                            int depth, const unsigned char *palette, int palette_count,
                            int level, unsigned char **out, size_t *out_size,
                            char *msg, size_t msgcap);

/* JPEG */

/// Encodes 8-bit RGB as a baseline JPEG in memory (for test images and fuzz seeds);
/// *out is allocated by libjpeg's memory destination and freed by the caller with free().
cyto_status cyto_jpeg_encode(const unsigned char *rgb, uint32_t width, uint32_t height, int quality,
                             unsigned char **out, unsigned long *out_size, char *msg, size_t msgcap);

/// Encodes 8-bit CMYK (4 interleaved samples per pixel, as given) as a JPEG with an
/// Adobe marker, as Photoshop writes print-ready files (for tests).
cyto_status cyto_jpeg_encode_cmyk(const unsigned char *cmyk, uint32_t width, uint32_t height, int quality,
                                  unsigned char **out, unsigned long *out_size, char *msg, size_t msgcap);

/// Decodes a baseline or progressive JPEG (greyscale, YCbCr, RGB, or CMYK/YCCK as
/// Photoshop and print workflows write it) to 8-bit RGB. CMYK becomes RGB as PIL
/// converts it: R = (255 - C)(255 - K)/255, ...; with an Adobe marker the stored
/// samples are inverted (Adobe's convention), without one they are taken as written.
/// A stream that ends early is reported as CYTO_TRUNCATED even though libjpeg
/// itself would only warn and pad the image with grey.
cyto_status cyto_jpeg_decode(const unsigned char *data, size_t size, uint64_t max_pixels,
                             cyto_rgb *out, char *msg, size_t msgcap);

/// Reads only the JPEG header: size and number of components.
cyto_status cyto_jpeg_info(const unsigned char *data, size_t size, uint32_t *width, uint32_t *height,
                           int *components, char *msg, size_t msgcap);

/* TIFF */

/// Size and sample layout of the first TIFF directory, without decoding pixels.
typedef struct {
    uint32_t width, height;
    uint16_t samples_per_pixel, bits_per_sample, photometric, compression, sample_format, planar;
    int tiled;
    uint32_t pages;   // directories (pages) in the file; only the first is decoded
    uint16_t orientation;  // the Orientation tag, 1 (top-left) when absent
} cyto_tiff_info_t;

/// Reads only the first TIFF directory's tags into `info`.
cyto_status cyto_tiff_info(const unsigned char *data, size_t size, cyto_tiff_info_t *info,
                           char *msg, size_t msgcap);

/// Decodes the first directory of a TIFF through libtiff's RGBA interface (the pixels
/// as stored: the Orientation tag is returned in `out->orientation`, not applied; libtiff
/// applied its mirrors but not its quarter turns), which
/// handles strips and tiles, every compression libtiff was built with (none,
/// LZW, Deflate, PackBits, JPEG, ...), RGB, palette, grey, YCbCr and 16-bit
/// samples. Extra samples (alpha) are declared "unspecified" before reading, so
/// libtiff ignores them instead of premultiplying the colours: the first three
/// channels come back unchanged, as the paper's loaders kept them.
cyto_status cyto_tiff_decode(const unsigned char *data, size_t size, uint64_t max_pixels,
                             cyto_rgb *out, char *msg, size_t msgcap);

/// What to write: `data` holds `height` rows of `width * samples_per_pixel`
/// samples, each `bits_per_sample` wide (8, 16 or 32; native endian), interleaved.
typedef struct {
    uint32_t width, height;
    uint16_t samples_per_pixel;
    uint16_t bits_per_sample;
    uint16_t photometric;      // PHOTOMETRIC_MINISBLACK / RGB / PALETTE / YCBCR (JPEG only)
    uint16_t compression;      // COMPRESSION_NONE / LZW / ADOBE_DEFLATE / PACKBITS / JPEG
    uint16_t sample_format;    // SAMPLEFORMAT_UINT or SAMPLEFORMAT_IEEEFP
    uint16_t predictor;        // 1 none, 2 horizontal (LZW/Deflate only)
    uint16_t extra_alpha;      // 0 none, 1 unassociated alpha, 2 associated alpha (last sample)
    uint32_t rows_per_strip;   // 0: whole image in one strip
    uint32_t tile_width;       // 0: strips; else tiles of tile_width x tile_height (multiples of 16)
    uint32_t tile_height;
    int jpeg_quality;
    const uint16_t *colormap;  // palette: 3 * 2^bits entries (R..., G..., B...), 16-bit
    uint16_t orientation;      // the Orientation tag to record (0: 1, top-left)
} cyto_tiff_spec;

/// Writes a single-directory TIFF to `path`. The caller renames it into place.
cyto_status cyto_tiff_write(const char *path, const cyto_tiff_spec *s, const void *data,
                            char *msg, size_t msgcap);

#endif
