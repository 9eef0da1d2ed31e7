// libpng, libtiff and libjpeg-turbo (Debian: libpng-dev, libtiff-dev, libjpeg-dev).
//
// Why there is C code in this header
// ----------------------------------
// libpng and libjpeg report fatal errors by longjmp()-ing out of their error
// callbacks, and Swift cannot call setjmp (a longjmp across Swift frames is
// undefined behaviour). libtiff's field accessors (TIFFGetField/TIFFSetField)
// are C variadic functions, which Swift cannot call either. A SwiftPM system
// library target cannot hold .c files, so the few functions that must be C are
// `static inline` functions here: Clang compiles them into the importing Swift
// module, and every setjmp/longjmp pair stays inside one C function body, never
// crossing a Swift frame.
//
// Conventions: every decoder reads from memory (the caller has read or mapped
// the file), returns a malloc'd buffer that the caller frees with free(), and
// reports failure with a `cyto_status` code plus a message copied into the
// caller's buffer. Nothing here prints to stderr.
#ifndef CYTO_IMAGE_CODECS_SHIM_H
#define CYTO_IMAGE_CODECS_SHIM_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdarg.h>
#include <stdint.h>
#include <setjmp.h>
#include <png.h>
#include <tiffio.h>
#include <jpeglib.h>
#include <jerror.h>

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
} cyto_rgb;

static inline void cyto_set_message(char *dst, size_t cap, const char *src) {
    if (!dst || cap == 0) return;
    snprintf(dst, cap, "%s", src ? src : "");
}

/* ======================================================================= */
/* PNG                                                                     */
/* ======================================================================= */

typedef struct {
    const unsigned char *data;
    size_t size;
    size_t pos;
    int truncated;
    char message[256];
} cyto_png_ctx;

static inline void cyto_png_error(png_structp png, png_const_charp msg) {
    cyto_png_ctx *ctx = (cyto_png_ctx *)png_get_error_ptr(png);
    if (ctx && ctx->message[0] == 0) snprintf(ctx->message, sizeof ctx->message, "%s", msg);
    png_longjmp(png, 1);
}

static inline void cyto_png_warning(png_structp png, png_const_charp msg) {
    (void)png; (void)msg;  // benign (e.g. unknown ancillary chunks): ignored
}

static inline void cyto_png_read(png_structp png, png_bytep out, size_t n) {
    cyto_png_ctx *ctx = (cyto_png_ctx *)png_get_io_ptr(png);
    if (ctx->size - ctx->pos < n) {
        ctx->truncated = 1;
        png_error(png, "the file ends before the image data does");
    }
    memcpy(out, ctx->data + ctx->pos, n);
    ctx->pos += n;
}

typedef struct { unsigned char *image; png_bytep *rows; cyto_status status; } cyto_png_hold;

/// Decodes a PNG of any colour type and depth to 8-bit RGB: palettes expanded,
/// grey replicated, 16-bit reduced by dropping the low byte (as PIL does), alpha
/// and tRNS dropped (the first three channels are kept). No gamma conversion:
/// the stored values are returned, like the paper's Python loaders.
static inline cyto_status cyto_png_decode(const unsigned char *data, size_t size, uint64_t max_pixels,
                                          cyto_rgb *out, char *msg, size_t msgcap) {
    cyto_png_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    ctx.data = data; ctx.size = size;
    out->pixels = NULL; out->width = 0; out->height = 0;
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &ctx, cyto_png_error, cyto_png_warning);
    if (!png) { cyto_set_message(msg, msgcap, "out of memory"); return CYTO_NO_MEMORY; }
    png_infop info = png_create_info_struct(png);
    if (!info) { png_destroy_read_struct(&png, NULL, NULL); cyto_set_message(msg, msgcap, "out of memory"); return CYTO_NO_MEMORY; }
    // Everything assigned after setjmp and read after a longjmp lives in memory
    // reached through `holder`, so no register copy can go stale.
    cyto_png_hold volatile_holder = { NULL, NULL, CYTO_OK };
    void *volatile holder_ptr = &volatile_holder;
    if (setjmp(png_jmpbuf(png))) {
        cyto_png_hold *h = holder_ptr;
        free(h->image); free(h->rows);
        png_destroy_read_struct(&png, &info, NULL);
        cyto_set_message(msg, msgcap, ctx.message);
        if (h->status != CYTO_OK) return h->status;
        return ctx.truncated ? CYTO_TRUNCATED : CYTO_CORRUPT;
    }
    png_set_user_limits(png, 1000000, 1000000);
    png_set_read_fn(png, &ctx, cyto_png_read);
    png_read_info(png, info);
    png_uint_32 w = png_get_image_width(png, info), h = png_get_image_height(png, info);
    int depth = png_get_bit_depth(png, info), ctype = png_get_color_type(png, info);
    if ((uint64_t)w * (uint64_t)h > max_pixels) {
        ((cyto_png_hold *)holder_ptr)->status = CYTO_TOO_LARGE;
        snprintf(ctx.message, sizeof ctx.message, "%ux%u pixels is above the limit of %llu", (unsigned)w, (unsigned)h,
                 (unsigned long long)max_pixels);
        png_longjmp(png, 1);
    }
    if (depth == 16) png_set_strip_16(png);
    if (ctype == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if ((ctype == PNG_COLOR_TYPE_GRAY || ctype == PNG_COLOR_TYPE_GRAY_ALPHA) && depth < 8)
        png_set_expand_gray_1_2_4_to_8(png);
    if (ctype == PNG_COLOR_TYPE_GRAY || ctype == PNG_COLOR_TYPE_GRAY_ALPHA) png_set_gray_to_rgb(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    size_t channels = png_get_channels(png, info);
    size_t rowbytes = png_get_rowbytes(png, info);
    if (channels < 3 || channels > 4 || rowbytes != (size_t)w * channels) {
        ((cyto_png_hold *)holder_ptr)->status = CYTO_UNSUPPORTED;
        snprintf(ctx.message, sizeof ctx.message, "unsupported PNG pixel layout (colour type %d, %d bits)", ctype, depth);
        png_longjmp(png, 1);
    }
    cyto_png_hold *hold = holder_ptr;
    hold->image = (unsigned char *)malloc(rowbytes * (size_t)h + 1);
    hold->rows = (png_bytep *)malloc(sizeof(png_bytep) * ((size_t)h + 1));
    if (!hold->image || !hold->rows) {
        hold->status = CYTO_NO_MEMORY;
        snprintf(ctx.message, sizeof ctx.message, "out of memory for %ux%u pixels", (unsigned)w, (unsigned)h);
        png_longjmp(png, 1);
    }
    for (png_uint_32 y = 0; y < h; y++) hold->rows[y] = hold->image + (size_t)y * rowbytes;
    png_read_image(png, hold->rows);
    png_destroy_read_struct(&png, &info, NULL);
    free(hold->rows);
    unsigned char *img = hold->image;
    if (channels == 4) {  // keep the first three channels, in place
        size_t n = (size_t)w * h;
        for (size_t i = 0; i < n; i++) {
            img[i * 3] = img[i * 4]; img[i * 3 + 1] = img[i * 4 + 1]; img[i * 3 + 2] = img[i * 4 + 2];
        }
    }
    out->pixels = img; out->width = w; out->height = h;
    return CYTO_OK;
}

typedef struct {
    unsigned char *data;
    size_t size;
    size_t cap;
    int failed;
    char message[256];
} cyto_png_wctx;

static inline void cyto_png_write_fn(png_structp png, png_bytep src, size_t n) {
    cyto_png_wctx *c = (cyto_png_wctx *)png_get_io_ptr(png);
    if (c->size + n > c->cap) {
        size_t ncap = c->cap ? c->cap * 2 : 65536;
        while (ncap < c->size + n) ncap *= 2;
        unsigned char *p = (unsigned char *)realloc(c->data, ncap);
        if (!p) { c->failed = 1; png_error(png, "out of memory"); }
        c->data = p; c->cap = ncap;
    }
    memcpy(c->data + c->size, src, n);
    c->size += n;
}
static inline void cyto_png_flush_fn(png_structp png) { (void)png; }

/// Encodes a PNG into memory. `color_type` is a PNG_COLOR_TYPE_* value; `depth`
/// is 8 or 16 (16-bit samples are given as native-endian uint16); for a palette
/// image `palette` holds `palette_count` RGB triples and `data` one index byte per pixel.
static inline cyto_status cyto_png_encode(const void *data, uint32_t width, uint32_t height, int color_type,
                                          int depth, const unsigned char *palette, int palette_count,
                                          int level, unsigned char **out, size_t *out_size,
                                          char *msg, size_t msgcap) {
    cyto_png_wctx ctx;
    memset(&ctx, 0, sizeof ctx);
    *out = NULL; *out_size = 0;
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &ctx, cyto_png_error, cyto_png_warning);
    if (!png) { cyto_set_message(msg, msgcap, "out of memory"); return CYTO_NO_MEMORY; }
    png_infop info = png_create_info_struct(png);
    void *volatile rows_holder = NULL;
    if (!info) { png_destroy_write_struct(&png, NULL); return CYTO_NO_MEMORY; }
    // cyto_png_error writes into a cyto_png_ctx; the write context starts with
    // different fields, so give the error callback its own context.
    cyto_png_ctx errctx;
    memset(&errctx, 0, sizeof errctx);
    png_set_error_fn(png, &errctx, cyto_png_error, cyto_png_warning);
    if (setjmp(png_jmpbuf(png))) {
        free(rows_holder);
        png_destroy_write_struct(&png, &info);
        free(ctx.data);
        cyto_set_message(msg, msgcap, errctx.message);
        return CYTO_IO;
    }
    png_set_write_fn(png, &ctx, cyto_png_write_fn, cyto_png_flush_fn);
    png_set_compression_level(png, level);
    png_set_IHDR(png, info, width, height, depth, color_type, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (color_type == PNG_COLOR_TYPE_PALETTE) {
        png_color pal[256];
        int n = palette_count > 256 ? 256 : palette_count;
        for (int i = 0; i < n; i++) { pal[i].red = palette[i*3]; pal[i].green = palette[i*3+1]; pal[i].blue = palette[i*3+2]; }
        png_set_PLTE(png, info, pal, n);
    }
    png_write_info(png, info);
    if (depth == 16) {
        uint16_t probe = 1;
        if (*(unsigned char *)&probe == 1) png_set_swap(png);  // PNG is big-endian
    }
    int channels = color_type == PNG_COLOR_TYPE_GRAY ? 1 : color_type == PNG_COLOR_TYPE_GRAY_ALPHA ? 2
                 : color_type == PNG_COLOR_TYPE_RGB ? 3 : color_type == PNG_COLOR_TYPE_RGB_ALPHA ? 4 : 1;
    size_t rowbytes = (size_t)width * channels * (depth == 16 ? 2 : 1);
    png_bytep *rows = (png_bytep *)malloc(sizeof(png_bytep) * ((size_t)height + 1));
    rows_holder = rows;
    if (!rows) png_error(png, "out of memory");
    for (uint32_t y = 0; y < height; y++) rows[y] = (png_bytep)data + (size_t)y * rowbytes;
    png_write_image(png, rows);
    png_write_end(png, NULL);
    free(rows);
    rows_holder = NULL;
    png_destroy_write_struct(&png, &info);
    *out = ctx.data; *out_size = ctx.size;
    return CYTO_OK;
}

/* ======================================================================= */
/* JPEG (libjpeg-turbo, libjpeg 6.2 API)                                   */
/* ======================================================================= */

typedef struct {
    struct jpeg_error_mgr pub;
    jmp_buf jump;
    int hit_eof;
    char message[JMSG_LENGTH_MAX];
} cyto_jpeg_err;

static inline void cyto_jpeg_error_exit(j_common_ptr cinfo) {
    cyto_jpeg_err *e = (cyto_jpeg_err *)cinfo->err;
    (*cinfo->err->format_message)(cinfo, e->message);
    longjmp(e->jump, 1);
}

static inline void cyto_jpeg_emit(j_common_ptr cinfo, int level) {
    if (level < 0) {  // a warning (corrupt or missing data); trace messages are ignored
        cyto_jpeg_err *e = (cyto_jpeg_err *)cinfo->err;
        if (cinfo->err->msg_code == JWRN_JPEG_EOF) e->hit_eof = 1;
        cinfo->err->num_warnings++;
    }
}

/// Encodes 8-bit RGB as a baseline JPEG in memory (for test images and fuzz seeds);
/// *out is allocated by libjpeg's memory destination and freed by the caller with free().
static inline cyto_status cyto_jpeg_encode(const unsigned char *rgb, uint32_t width, uint32_t height, int quality,
                                           unsigned char **out, unsigned long *out_size, char *msg, size_t msgcap) {
    struct jpeg_compress_struct cinfo;
    cyto_jpeg_err err;
    memset(&err, 0, sizeof err);
    *out = NULL; *out_size = 0;
    cinfo.err = jpeg_std_error(&err.pub);
    err.pub.error_exit = cyto_jpeg_error_exit;
    unsigned char *volatile *out_holder = out;
    if (setjmp(err.jump)) {
        jpeg_destroy_compress(&cinfo);
        free(*out_holder); *out_holder = NULL;
        cyto_set_message(msg, msgcap, err.message);
        return CYTO_CORRUPT;
    }
    jpeg_create_compress(&cinfo);
    jpeg_mem_dest(&cinfo, out, out_size);
    cinfo.image_width = width; cinfo.image_height = height;
    cinfo.input_components = 3; cinfo.in_color_space = JCS_RGB;
    jpeg_set_defaults(&cinfo);
    jpeg_set_quality(&cinfo, quality, TRUE);
    jpeg_start_compress(&cinfo, TRUE);
    while (cinfo.next_scanline < cinfo.image_height) {
        JSAMPROW row = (JSAMPROW)(rgb + (size_t)cinfo.next_scanline * width * 3);
        jpeg_write_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_compress(&cinfo);
    jpeg_destroy_compress(&cinfo);
    return CYTO_OK;
}

typedef struct { unsigned char *image; cyto_status status; } cyto_jpeg_hold;

/// Decodes a baseline or progressive JPEG (greyscale, YCbCr or RGB) to 8-bit RGB.
/// A stream that ends early is reported as CYTO_TRUNCATED even though libjpeg
/// itself would only warn and pad the image with grey.
static inline cyto_status cyto_jpeg_decode(const unsigned char *data, size_t size, uint64_t max_pixels,
                                           cyto_rgb *out, char *msg, size_t msgcap) {
    struct jpeg_decompress_struct cinfo;
    cyto_jpeg_err err;
    memset(&err, 0, sizeof err);
    out->pixels = NULL; out->width = 0; out->height = 0;
    cinfo.err = jpeg_std_error(&err.pub);
    err.pub.error_exit = cyto_jpeg_error_exit;
    err.pub.emit_message = cyto_jpeg_emit;
    cyto_jpeg_hold holder = { NULL, CYTO_OK };
    void *volatile holder_ptr = &holder;
    if (setjmp(err.jump)) {
        cyto_jpeg_hold *h = holder_ptr;
        free(h->image);
        jpeg_destroy_decompress(&cinfo);
        if (h->status != CYTO_OK) { cyto_set_message(msg, msgcap, err.message); return h->status; }
        if (err.hit_eof) { cyto_set_message(msg, msgcap, "the file ends before the image data does"); return CYTO_TRUNCATED; }
        cyto_set_message(msg, msgcap, err.message);
        return CYTO_CORRUPT;
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, data, (unsigned long)size);
    jpeg_read_header(&cinfo, TRUE);
    cyto_jpeg_hold *hold = holder_ptr;
    if (cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK) {
        hold->status = CYTO_UNSUPPORTED;
        snprintf(err.message, sizeof err.message, "CMYK/YCCK JPEG (%d components) is not supported", cinfo.num_components);
        longjmp(err.jump, 1);
    }
    if ((uint64_t)cinfo.image_width * cinfo.image_height > max_pixels) {
        hold->status = CYTO_TOO_LARGE;
        snprintf(err.message, sizeof err.message, "%ux%u pixels is above the limit of %llu", cinfo.image_width,
                 cinfo.image_height, (unsigned long long)max_pixels);
        longjmp(err.jump, 1);
    }
    cinfo.out_color_space = JCS_RGB;
    jpeg_start_decompress(&cinfo);
    if (cinfo.output_components != 3) {
        hold->status = CYTO_UNSUPPORTED;
        snprintf(err.message, sizeof err.message, "JPEG decodes to %d components, not 3", cinfo.output_components);
        longjmp(err.jump, 1);
    }
    size_t rowbytes = (size_t)cinfo.output_width * 3;
    hold->image = (unsigned char *)malloc(rowbytes * cinfo.output_height + 1);
    if (!hold->image) {
        hold->status = CYTO_NO_MEMORY;
        snprintf(err.message, sizeof err.message, "out of memory");
        longjmp(err.jump, 1);
    }
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW row = hold->image + (size_t)cinfo.output_scanline * rowbytes;
        if (jpeg_read_scanlines(&cinfo, &row, 1) != 1) break;
        if (err.hit_eof) break;
    }
    if (err.hit_eof) longjmp(err.jump, 1);
    jpeg_finish_decompress(&cinfo);
    out->width = cinfo.output_width; out->height = cinfo.output_height;
    jpeg_destroy_decompress(&cinfo);
    if (err.hit_eof) { free(hold->image); cyto_set_message(msg, msgcap, "the file ends before the image data does"); return CYTO_TRUNCATED; }
    out->pixels = hold->image;
    return CYTO_OK;
}

/// Reads only the JPEG header: size and number of components.
static inline cyto_status cyto_jpeg_info(const unsigned char *data, size_t size, uint32_t *width, uint32_t *height,
                                         int *components, char *msg, size_t msgcap) {
    struct jpeg_decompress_struct cinfo;
    cyto_jpeg_err err;
    memset(&err, 0, sizeof err);
    cinfo.err = jpeg_std_error(&err.pub);
    err.pub.error_exit = cyto_jpeg_error_exit;
    err.pub.emit_message = cyto_jpeg_emit;
    if (setjmp(err.jump)) {
        jpeg_destroy_decompress(&cinfo);
        if (err.hit_eof) { cyto_set_message(msg, msgcap, "the file ends before the header does"); return CYTO_TRUNCATED; }
        cyto_set_message(msg, msgcap, err.message);
        return CYTO_CORRUPT;
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, data, (unsigned long)size);
    jpeg_read_header(&cinfo, TRUE);
    *width = cinfo.image_width; *height = cinfo.image_height; *components = cinfo.num_components;
    jpeg_destroy_decompress(&cinfo);
    return CYTO_OK;
}

/* ======================================================================= */
/* TIFF                                                                    */
/* ======================================================================= */

// libtiff reports errors through a process-wide handler that prints to stderr
// by default. We install one that records the first message of the current
// thread, so two decodes on two cores never mix their messages.
static inline char *cyto_tiff_msgbuf(void) {
    static _Thread_local char buffer[512];
    return buffer;
}
#define cyto_tiff_message (cyto_tiff_msgbuf())

static inline void cyto_tiff_error_handler(const char *module, const char *fmt, va_list ap) {
    (void)module;
    if (cyto_tiff_message[0] == 0) vsnprintf(cyto_tiff_message, 512, fmt, ap);
}
static inline void cyto_tiff_warning_handler(const char *module, const char *fmt, va_list ap) {
    (void)module; (void)fmt; (void)ap;
}
static inline void cyto_tiff_begin(void) {
    TIFFSetErrorHandler(cyto_tiff_error_handler);
    TIFFSetWarningHandler(cyto_tiff_warning_handler);
    cyto_tiff_message[0] = 0;
}

typedef struct {
    const unsigned char *data;
    uint64_t size;
    uint64_t pos;
} cyto_tiff_mem;

static inline tmsize_t cyto_tiff_read(thandle_t h, void *buf, tmsize_t n) {
    cyto_tiff_mem *m = (cyto_tiff_mem *)h;
    if (n <= 0 || m->pos >= m->size) return 0;
    uint64_t avail = m->size - m->pos;
    uint64_t k = (uint64_t)n < avail ? (uint64_t)n : avail;
    memcpy(buf, m->data + m->pos, (size_t)k);
    m->pos += k;
    return (tmsize_t)k;
}
static inline tmsize_t cyto_tiff_write_none(thandle_t h, void *buf, tmsize_t n) { (void)h; (void)buf; (void)n; return -1; }
static inline toff_t cyto_tiff_seek(thandle_t h, toff_t off, int whence) {
    cyto_tiff_mem *m = (cyto_tiff_mem *)h;
    uint64_t base = whence == SEEK_CUR ? m->pos : whence == SEEK_END ? m->size : 0;
    m->pos = base + off;  // may point past the end; reads there return 0 bytes
    return m->pos;
}
static inline int cyto_tiff_close(thandle_t h) { (void)h; return 0; }
static inline toff_t cyto_tiff_size(thandle_t h) { return ((cyto_tiff_mem *)h)->size; }
static inline int cyto_tiff_map(thandle_t h, void **base, toff_t *size) {
    cyto_tiff_mem *m = (cyto_tiff_mem *)h;
    *base = (void *)m->data; *size = m->size;
    return 1;
}
static inline void cyto_tiff_unmap(thandle_t h, void *base, toff_t size) { (void)h; (void)base; (void)size; }

/// 1 when the first image directory of a classic TIFF runs past the end of the
/// data (libtiff itself may then fail with a generic message, or read a partial
/// directory), which is how a file cut short during copying looks.
static inline int cyto_tiff_ifd_truncated(const unsigned char *d, size_t size) {
    if (size < 8) return 1;
    int le = d[0] == 'I';
    if ((le ? d[2] : d[3]) != 42) return 0;  // BigTIFF: leave it to libtiff
    uint64_t off = le ? ((uint32_t)d[4] | ((uint32_t)d[5] << 8) | ((uint32_t)d[6] << 16) | ((uint32_t)d[7] << 24))
                      : (((uint32_t)d[4] << 24) | ((uint32_t)d[5] << 16) | ((uint32_t)d[6] << 8) | (uint32_t)d[7]);
    if (off + 2 > size) return 1;
    uint64_t n = le ? (d[off] | (d[off + 1] << 8)) : ((d[off] << 8) | d[off + 1]);
    return off + 2 + n * 12 + 4 > size;
}

static inline TIFF *cyto_tiff_open_mem(cyto_tiff_mem *mem) {
    return TIFFClientOpen("image", "r", (thandle_t)mem, cyto_tiff_read, cyto_tiff_write_none, cyto_tiff_seek,
                          cyto_tiff_close, cyto_tiff_size, cyto_tiff_map, cyto_tiff_unmap);
}

/// Size and sample layout of the first TIFF directory, without decoding pixels.
typedef struct {
    uint32_t width, height;
    uint16_t samples_per_pixel, bits_per_sample, photometric, compression, sample_format, planar;
    int tiled;
    uint32_t pages;   // directories (pages) in the file; only the first is decoded
} cyto_tiff_info_t;

static inline cyto_status cyto_tiff_info(const unsigned char *data, size_t size, cyto_tiff_info_t *info,
                                         char *msg, size_t msgcap) {
    cyto_tiff_begin();
    cyto_tiff_mem mem = { data, size, 0 };
    memset(info, 0, sizeof *info);
    TIFF *tif = cyto_tiff_open_mem(&mem);
    if (!tif) {
        cyto_set_message(msg, msgcap, cyto_tiff_message[0] ? cyto_tiff_message : "cannot read the TIFF header");
        return cyto_tiff_ifd_truncated(data, size) ? CYTO_TRUNCATED : CYTO_CORRUPT;
    }
    TIFFGetField(tif, TIFFTAG_IMAGEWIDTH, &info->width);
    TIFFGetField(tif, TIFFTAG_IMAGELENGTH, &info->height);
    TIFFGetFieldDefaulted(tif, TIFFTAG_SAMPLESPERPIXEL, &info->samples_per_pixel);
    TIFFGetFieldDefaulted(tif, TIFFTAG_BITSPERSAMPLE, &info->bits_per_sample);
    if (!TIFFGetField(tif, TIFFTAG_PHOTOMETRIC, &info->photometric)) info->photometric = 0xFFFF;
    TIFFGetFieldDefaulted(tif, TIFFTAG_COMPRESSION, &info->compression);
    TIFFGetFieldDefaulted(tif, TIFFTAG_SAMPLEFORMAT, &info->sample_format);
    TIFFGetFieldDefaulted(tif, TIFFTAG_PLANARCONFIG, &info->planar);
    info->tiled = TIFFIsTiled(tif);
    info->pages = (uint32_t)TIFFNumberOfDirectories(tif);
    TIFFClose(tif);
    return CYTO_OK;
}

/// Decodes the first directory of a TIFF through libtiff's RGBA interface, which
/// handles strips and tiles, every compression libtiff was built with (none,
/// LZW, Deflate, PackBits, JPEG, ...), RGB, palette, grey, YCbCr and 16-bit
/// samples. Extra samples (alpha) are declared "unspecified" before reading, so
/// libtiff ignores them instead of premultiplying the colours: the first three
/// channels come back unchanged, as the paper's loaders kept them.
static inline cyto_status cyto_tiff_decode(const unsigned char *data, size_t size, uint64_t max_pixels,
                                           cyto_rgb *out, char *msg, size_t msgcap) {
    cyto_tiff_begin();
    out->pixels = NULL; out->width = 0; out->height = 0;
    cyto_tiff_mem mem = { data, size, 0 };
    TIFF *tif = cyto_tiff_open_mem(&mem);
    if (!tif) {
        cyto_set_message(msg, msgcap, cyto_tiff_message[0] ? cyto_tiff_message : "cannot read the TIFF header");
        // libtiff cannot tell "cut short" from "damaged" here; an IFD offset
        // beyond the end of the data is the usual sign of a cut file.
        return cyto_tiff_ifd_truncated(data, size) ? CYTO_TRUNCATED : CYTO_CORRUPT;
    }
    if (cyto_tiff_ifd_truncated(data, size)) {
        TIFFClose(tif);
        cyto_set_message(msg, msgcap, "the file ends inside the image directory");
        return CYTO_TRUNCATED;
    }
    uint32_t w = 0, h = 0;
    TIFFGetField(tif, TIFFTAG_IMAGEWIDTH, &w);
    TIFFGetField(tif, TIFFTAG_IMAGELENGTH, &h);
    if (w == 0 || h == 0) {
        TIFFClose(tif);
        cyto_set_message(msg, msgcap, "the TIFF has no image size");
        return CYTO_CORRUPT;
    }
    if ((uint64_t)w * h > max_pixels) {
        TIFFClose(tif);
        snprintf(msg, msgcap, "%ux%u pixels is above the limit of %llu", w, h, (unsigned long long)max_pixels);
        return CYTO_TOO_LARGE;
    }
    // A strip or tile that points past the end of the data means the file was cut.
    uint32_t nstriles = TIFFIsTiled(tif) ? TIFFNumberOfTiles(tif) : TIFFNumberOfStrips(tif);
    int tiled = TIFFIsTiled(tif);
    for (uint32_t i = 0; i < nstriles; i++) {
        uint64_t off = TIFFGetStrileOffset(tif, i), cnt = TIFFGetStrileByteCount(tif, i);
        if (off + cnt > size || off > size) {
            TIFFClose(tif);
            snprintf(msg, msgcap, "the file ends before the image data does (%s %u of %u needs bytes up to %llu, the file has %llu)",
                     tiled ? "tile" : "strip", i + 1, nstriles, (unsigned long long)(off + cnt),
                     (unsigned long long)size);
            return CYTO_TRUNCATED;
        }
    }
    uint16_t extra = 0; uint16_t *extra_types = NULL;
    if (TIFFGetField(tif, TIFFTAG_EXTRASAMPLES, &extra, &extra_types) && extra > 0 && extra <= 8) {
        uint16_t unspecified[8];
        for (int i = 0; i < extra; i++) unspecified[i] = EXTRASAMPLE_UNSPECIFIED;
        TIFFSetField(tif, TIFFTAG_EXTRASAMPLES, extra, unspecified);
    }
    char emsg[1024];
    emsg[0] = 0;
    if (!TIFFRGBAImageOK(tif, emsg)) {
        TIFFClose(tif);
        cyto_set_message(msg, msgcap, emsg[0] ? emsg : "unsupported TIFF pixel format");
        return CYTO_UNSUPPORTED;
    }
    uint32_t *raster = (uint32_t *)_TIFFmalloc((tmsize_t)((uint64_t)w * h * 4));
    if (!raster) { TIFFClose(tif); cyto_set_message(msg, msgcap, "out of memory"); return CYTO_NO_MEMORY; }
    cyto_tiff_message[0] = 0;
    int ok = TIFFReadRGBAImageOriented(tif, w, h, raster, ORIENTATION_TOPLEFT, 1);
    TIFFClose(tif);
    if (!ok) {
        _TIFFfree(raster);
        cyto_set_message(msg, msgcap, cyto_tiff_message[0] ? cyto_tiff_message : "cannot decode the TIFF pixel data");
        return CYTO_CORRUPT;
    }
    size_t n = (size_t)w * h;
    unsigned char *rgb = (unsigned char *)malloc(n * 3 + 1);
    if (!rgb) { _TIFFfree(raster); cyto_set_message(msg, msgcap, "out of memory"); return CYTO_NO_MEMORY; }
    for (size_t i = 0; i < n; i++) {
        uint32_t p = raster[i];
        rgb[i * 3] = (unsigned char)TIFFGetR(p);
        rgb[i * 3 + 1] = (unsigned char)TIFFGetG(p);
        rgb[i * 3 + 2] = (unsigned char)TIFFGetB(p);
    }
    _TIFFfree(raster);
    out->pixels = rgb; out->width = w; out->height = h;
    return CYTO_OK;
}

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
} cyto_tiff_spec;

/// Writes a single-directory TIFF to `path`. The caller renames it into place.
static inline cyto_status cyto_tiff_write(const char *path, const cyto_tiff_spec *s, const void *data,
                                          char *msg, size_t msgcap) {
    cyto_tiff_begin();
    TIFF *tif = TIFFOpen(path, "w");
    if (!tif) { cyto_set_message(msg, msgcap, cyto_tiff_message[0] ? cyto_tiff_message : "cannot create the file"); return CYTO_IO; }
    TIFFSetField(tif, TIFFTAG_IMAGEWIDTH, s->width);
    TIFFSetField(tif, TIFFTAG_IMAGELENGTH, s->height);
    TIFFSetField(tif, TIFFTAG_SAMPLESPERPIXEL, s->samples_per_pixel);
    TIFFSetField(tif, TIFFTAG_BITSPERSAMPLE, s->bits_per_sample);
    TIFFSetField(tif, TIFFTAG_PLANARCONFIG, PLANARCONFIG_CONTIG);
    TIFFSetField(tif, TIFFTAG_ORIENTATION, ORIENTATION_TOPLEFT);
    TIFFSetField(tif, TIFFTAG_SAMPLEFORMAT, s->sample_format ? s->sample_format : SAMPLEFORMAT_UINT);
    TIFFSetField(tif, TIFFTAG_COMPRESSION, s->compression);
    if (s->compression == COMPRESSION_JPEG) {
        TIFFSetField(tif, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_YCBCR);
        TIFFSetField(tif, TIFFTAG_JPEGQUALITY, s->jpeg_quality > 0 ? s->jpeg_quality : 90);
        TIFFSetField(tif, TIFFTAG_JPEGCOLORMODE, JPEGCOLORMODE_RGB);
    } else {
        TIFFSetField(tif, TIFFTAG_PHOTOMETRIC, s->photometric);
    }
    if (s->predictor > 1) TIFFSetField(tif, TIFFTAG_PREDICTOR, s->predictor);
    if (s->extra_alpha) {
        uint16_t t = s->extra_alpha == 2 ? EXTRASAMPLE_ASSOCALPHA : EXTRASAMPLE_UNASSALPHA;
        TIFFSetField(tif, TIFFTAG_EXTRASAMPLES, 1, &t);
    }
    if (s->photometric == PHOTOMETRIC_PALETTE && s->colormap) {
        size_t n = (size_t)1 << s->bits_per_sample;
        TIFFSetField(tif, TIFFTAG_COLORMAP, s->colormap, s->colormap + n, s->colormap + 2 * n);
    }
    size_t bytes_per_sample = s->bits_per_sample / 8;
    size_t rowbytes = (size_t)s->width * s->samples_per_pixel * bytes_per_sample;
    const unsigned char *src = (const unsigned char *)data;
    int ok = 1;
    if (s->tile_width > 0) {
        TIFFSetField(tif, TIFFTAG_TILEWIDTH, s->tile_width);
        TIFFSetField(tif, TIFFTAG_TILELENGTH, s->tile_height);
        size_t trow = (size_t)s->tile_width * s->samples_per_pixel * bytes_per_sample;
        size_t tsize = trow * s->tile_height;
        unsigned char *tile = (unsigned char *)calloc(tsize, 1);
        if (!tile) { TIFFClose(tif); return CYTO_NO_MEMORY; }
        for (uint32_t ty = 0; ty < s->height && ok; ty += s->tile_height)
            for (uint32_t tx = 0; tx < s->width && ok; tx += s->tile_width) {
                memset(tile, 0, tsize);
                for (uint32_t y = 0; y < s->tile_height && ty + y < s->height; y++) {
                    uint32_t cols = s->width - tx < s->tile_width ? s->width - tx : s->tile_width;
                    memcpy(tile + y * trow, src + (size_t)(ty + y) * rowbytes + (size_t)tx * s->samples_per_pixel * bytes_per_sample,
                           (size_t)cols * s->samples_per_pixel * bytes_per_sample);
                }
                if (TIFFWriteTile(tif, tile, tx, ty, 0, 0) < 0) ok = 0;
            }
        free(tile);
    } else {
        uint32_t rps = s->rows_per_strip ? s->rows_per_strip : s->height;
        TIFFSetField(tif, TIFFTAG_ROWSPERSTRIP, rps);
        // libtiff's encoders (the predictor in particular) modify the row in
        // place, so each row is copied: the caller's pixels stay untouched.
        unsigned char *row = (unsigned char *)malloc(rowbytes + 16);
        if (!row) { TIFFClose(tif); return CYTO_NO_MEMORY; }
        for (uint32_t y = 0; y < s->height && ok; y++) {
            memcpy(row, src + (size_t)y * rowbytes, rowbytes);
            if (TIFFWriteScanline(tif, row, y, 0) < 0) ok = 0;
        }
        free(row);
    }
    if (ok && !TIFFWriteDirectory(tif)) ok = 0;
    TIFFClose(tif);
    if (!ok) { cyto_set_message(msg, msgcap, cyto_tiff_message[0] ? cyto_tiff_message : "libtiff could not write the image"); return CYTO_IO; }
    return CYTO_OK;
}

#endif
