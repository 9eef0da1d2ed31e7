// PNG decoding and encoding through libpng for CytoData (declared in include/CImageCodecs.h).
#include "codec_internal.h"

#include <png.h>

typedef struct {
    const unsigned char *data;
    size_t size;
    size_t pos;
    int truncated;
    char message[256];
} cyto_png_ctx;

static void cyto_png_error(png_structp png, png_const_charp msg) {
    cyto_png_ctx *ctx = (cyto_png_ctx *)png_get_error_ptr(png);
    if (ctx && ctx->message[0] == 0) snprintf(ctx->message, sizeof ctx->message, "%s", msg);
    png_longjmp(png, 1);
}

static void cyto_png_warning(png_structp png, png_const_charp msg) {
    (void)png; (void)msg;  // benign (e.g. unknown ancillary chunks): ignored
}

static void cyto_png_read(png_structp png, png_bytep out, size_t n) {
    cyto_png_ctx *ctx = (cyto_png_ctx *)png_get_io_ptr(png);
    if (ctx->size - ctx->pos < n) {
        ctx->truncated = 1;
        png_error(png, "the file ends before the image data does");
    }
    memcpy(out, ctx->data + ctx->pos, n);
    ctx->pos += n;
}

typedef struct { unsigned char *image; png_bytep *rows; cyto_status status; } cyto_png_hold;

cyto_status cyto_png_decode(const unsigned char *data, size_t size, uint64_t max_pixels,
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

static void cyto_png_write_fn(png_structp png, png_bytep src, size_t n) {
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
static void cyto_png_flush_fn(png_structp png) { (void)png; }

cyto_status cyto_png_encode(const void *data, uint32_t width, uint32_t height, int color_type,
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
