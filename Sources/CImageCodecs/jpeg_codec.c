// JPEG decoding and encoding through libjpeg-turbo (libjpeg 6.2 API) for CytoData
// (declared in include/CImageCodecs.h).
#include "codec_internal.h"

#include <jpeglib.h>
#include <jerror.h>

typedef struct {
    struct jpeg_error_mgr pub;
    jmp_buf jump;
    int hit_eof;
    char message[JMSG_LENGTH_MAX];
} cyto_jpeg_err;

static void cyto_jpeg_error_exit(j_common_ptr cinfo) {
    cyto_jpeg_err *e = (cyto_jpeg_err *)cinfo->err;
    (*cinfo->err->format_message)(cinfo, e->message);
    longjmp(e->jump, 1);
}

static void cyto_jpeg_emit(j_common_ptr cinfo, int level) {
    if (level < 0) {  // a warning (corrupt or missing data); trace messages are ignored
        cyto_jpeg_err *e = (cyto_jpeg_err *)cinfo->err;
        if (cinfo->err->msg_code == JWRN_JPEG_EOF) e->hit_eof = 1;
        cinfo->err->num_warnings++;
    }
}

/// One encoder for both pixel layouts: interleaved rows of `components` bytes per pixel
/// in `space` (JCS_RGB, or JCS_CMYK, for which libjpeg writes the Adobe marker).
static cyto_status cyto_jpeg_encode_pixels(const unsigned char *pixels, uint32_t width, uint32_t height,
                                           int components, J_COLOR_SPACE space, int quality,
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
    cinfo.input_components = components; cinfo.in_color_space = space;
    jpeg_set_defaults(&cinfo);
    jpeg_set_quality(&cinfo, quality, TRUE);
    jpeg_start_compress(&cinfo, TRUE);
    while (cinfo.next_scanline < cinfo.image_height) {
        JSAMPROW row = (JSAMPROW)(pixels + (size_t)cinfo.next_scanline * width * (size_t)components);
        jpeg_write_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_compress(&cinfo);
    jpeg_destroy_compress(&cinfo);
    return CYTO_OK;
}

cyto_status cyto_jpeg_encode(const unsigned char *rgb, uint32_t width, uint32_t height, int quality,
                             unsigned char **out, unsigned long *out_size, char *msg, size_t msgcap) {
    return cyto_jpeg_encode_pixels(rgb, width, height, 3, JCS_RGB, quality, out, out_size, msg, msgcap);
}

cyto_status cyto_jpeg_encode_cmyk(const unsigned char *cmyk, uint32_t width, uint32_t height, int quality,
                                  unsigned char **out, unsigned long *out_size, char *msg, size_t msgcap) {
    return cyto_jpeg_encode_pixels(cmyk, width, height, 4, JCS_CMYK, quality, out, out_size, msg, msgcap);
}

typedef struct { unsigned char *image; unsigned char *row; cyto_status status; } cyto_jpeg_hold;

cyto_status cyto_jpeg_decode(const unsigned char *data, size_t size, uint64_t max_pixels,
                             cyto_rgb *out, char *msg, size_t msgcap) {
    struct jpeg_decompress_struct cinfo;
    cyto_jpeg_err err;
    memset(&err, 0, sizeof err);
    out->pixels = NULL; out->width = 0; out->height = 0;
    cinfo.err = jpeg_std_error(&err.pub);
    err.pub.error_exit = cyto_jpeg_error_exit;
    err.pub.emit_message = cyto_jpeg_emit;
    cyto_jpeg_hold holder = { NULL, NULL, CYTO_OK };
    void *volatile holder_ptr = &holder;
    if (setjmp(err.jump)) {
        cyto_jpeg_hold *h = holder_ptr;
        free(h->image); free(h->row);
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
    // Print workflows (Photoshop's "CMYK" save, some scanners) write CMYK or YCCK:
    // libjpeg hands out CMYK, converted to RGB below.
    int cmyk = cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK;
    if ((uint64_t)cinfo.image_width * cinfo.image_height > max_pixels) {
        hold->status = CYTO_TOO_LARGE;
        snprintf(err.message, sizeof err.message, "%ux%u pixels is above the limit of %llu", cinfo.image_width,
                 cinfo.image_height, (unsigned long long)max_pixels);
        longjmp(err.jump, 1);
    }
    cinfo.out_color_space = cmyk ? JCS_CMYK : JCS_RGB;
    jpeg_start_decompress(&cinfo);
    if (cinfo.output_components != (cmyk ? 4 : 3)) {
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
    if (cmyk) {
        hold->row = (unsigned char *)malloc((size_t)cinfo.output_width * 4 + 1);
        if (!hold->row) {
            hold->status = CYTO_NO_MEMORY;
            snprintf(err.message, sizeof err.message, "out of memory");
            longjmp(err.jump, 1);
        }
    }
    // Adobe's files store the inks inverted (0 = full ink); without its marker they are as written.
    int inverted = cinfo.saw_Adobe_marker;
    while (cinfo.output_scanline < cinfo.output_height) {
        unsigned char *dst = hold->image + (size_t)cinfo.output_scanline * rowbytes;
        JSAMPROW row = cmyk ? hold->row : dst;
        if (jpeg_read_scanlines(&cinfo, &row, 1) != 1) break;
        if (cmyk) {
            for (uint32_t x = 0; x < cinfo.output_width; x++) {
                const unsigned char *p = hold->row + (size_t)x * 4;
                unsigned k = inverted ? p[3] : 255u - p[3];
                for (int c = 0; c < 3; c++) {
                    unsigned v = inverted ? p[c] : 255u - p[c];  // 255 - ink
                    dst[(size_t)x * 3 + c] = (unsigned char)((v * k + 127) / 255);
                }
            }
        }
        if (err.hit_eof) break;
    }
    if (err.hit_eof) longjmp(err.jump, 1);
    jpeg_finish_decompress(&cinfo);
    out->width = cinfo.output_width; out->height = cinfo.output_height;
    jpeg_destroy_decompress(&cinfo);
    free(hold->row); hold->row = NULL;
    if (err.hit_eof) { free(hold->image); cyto_set_message(msg, msgcap, "the file ends before the image data does"); return CYTO_TRUNCATED; }
    out->pixels = hold->image;
    return CYTO_OK;
}

cyto_status cyto_jpeg_info(const unsigned char *data, size_t size, uint32_t *width, uint32_t *height,
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
