// TIFF reading and writing through libtiff for CytoData (declared in include/CImageCodecs.h).
#include "codec_internal.h"

#include <tiffio.h>

// libtiff reports errors through a process-wide handler that prints to stderr
// by default. We install one that records the first message of the current
// thread, so two decodes on two cores never mix their messages. This is the
// only definition of the buffer (it used to be a static in a header, one copy
// per importing module).
static _Thread_local char cyto_tiff_message[512];

static void cyto_tiff_error_handler(const char *module, const char *fmt, va_list ap) {
    (void)module;
    if (cyto_tiff_message[0] == 0) vsnprintf(cyto_tiff_message, sizeof cyto_tiff_message, fmt, ap);
}
static void cyto_tiff_warning_handler(const char *module, const char *fmt, va_list ap) {
    (void)module; (void)fmt; (void)ap;
}
static void cyto_tiff_begin(void) {
    TIFFSetErrorHandler(cyto_tiff_error_handler);
    TIFFSetWarningHandler(cyto_tiff_warning_handler);
    cyto_tiff_message[0] = 0;
}

typedef struct {
    const unsigned char *data;
    uint64_t size;
    uint64_t pos;
} cyto_tiff_mem;

static tmsize_t cyto_tiff_read(thandle_t h, void *buf, tmsize_t n) {
    cyto_tiff_mem *m = (cyto_tiff_mem *)h;
    if (n <= 0 || m->pos >= m->size) return 0;
    uint64_t avail = m->size - m->pos;
    uint64_t k = (uint64_t)n < avail ? (uint64_t)n : avail;
    memcpy(buf, m->data + m->pos, (size_t)k);
    m->pos += k;
    return (tmsize_t)k;
}
static tmsize_t cyto_tiff_write_none(thandle_t h, void *buf, tmsize_t n) { (void)h; (void)buf; (void)n; return -1; }
static toff_t cyto_tiff_seek(thandle_t h, toff_t off, int whence) {
    cyto_tiff_mem *m = (cyto_tiff_mem *)h;
    uint64_t base = whence == SEEK_CUR ? m->pos : whence == SEEK_END ? m->size : 0;
    m->pos = base + off;  // may point past the end; reads there return 0 bytes
    return m->pos;
}
static int cyto_tiff_close(thandle_t h) { (void)h; return 0; }
static toff_t cyto_tiff_size(thandle_t h) { return ((cyto_tiff_mem *)h)->size; }
static int cyto_tiff_map(thandle_t h, void **base, toff_t *size) {
    cyto_tiff_mem *m = (cyto_tiff_mem *)h;
    *base = (void *)m->data; *size = m->size;
    return 1;
}
static void cyto_tiff_unmap(thandle_t h, void *base, toff_t size) { (void)h; (void)base; (void)size; }

/// 1 when the first image directory of a classic TIFF runs past the end of the
/// data (libtiff itself may then fail with a generic message, or read a partial
/// directory), which is how a file cut short during copying looks.
static int cyto_tiff_ifd_truncated(const unsigned char *d, size_t size) {
    if (size < 8) return 1;
    int le = d[0] == 'I';
    if ((le ? d[2] : d[3]) != 42) return 0;  // BigTIFF: leave it to libtiff
    uint64_t off = le ? ((uint32_t)d[4] | ((uint32_t)d[5] << 8) | ((uint32_t)d[6] << 16) | ((uint32_t)d[7] << 24))
                      : (((uint32_t)d[4] << 24) | ((uint32_t)d[5] << 16) | ((uint32_t)d[6] << 8) | (uint32_t)d[7]);
    if (off + 2 > size) return 1;
    uint64_t n = le ? (d[off] | (d[off + 1] << 8)) : ((d[off] << 8) | d[off + 1]);
    return off + 2 + n * 12 + 4 > size;
}

static TIFF *cyto_tiff_open_mem(cyto_tiff_mem *mem) {
    return TIFFClientOpen("image", "r", (thandle_t)mem, cyto_tiff_read, cyto_tiff_write_none, cyto_tiff_seek,
                          cyto_tiff_close, cyto_tiff_size, cyto_tiff_map, cyto_tiff_unmap);
}

cyto_status cyto_tiff_info(const unsigned char *data, size_t size, cyto_tiff_info_t *info,
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
    if (!TIFFGetField(tif, TIFFTAG_ORIENTATION, &info->orientation)) info->orientation = ORIENTATION_TOPLEFT;
    TIFFClose(tif);
    return CYTO_OK;
}

cyto_status cyto_tiff_decode(const unsigned char *data, size_t size, uint64_t max_pixels,
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
    // The pixels are read as stored and the caller turns them: libtiff's RGBA reader
    // applies an Orientation's mirrors but not its quarter turns (5-8 came out wrong).
    uint16_t orientation = ORIENTATION_TOPLEFT;
    if (TIFFGetField(tif, TIFFTAG_ORIENTATION, &orientation) && orientation != ORIENTATION_TOPLEFT)
        TIFFSetField(tif, TIFFTAG_ORIENTATION, ORIENTATION_TOPLEFT);
    char emsg[1024];
    emsg[0] = 0;
    uint16_t sample_format = SAMPLEFORMAT_UINT, bits = 8;
    TIFFGetFieldDefaulted(tif, TIFFTAG_SAMPLEFORMAT, &sample_format);
    TIFFGetFieldDefaulted(tif, TIFFTAG_BITSPERSAMPLE, &bits);
    if (sample_format == SAMPLEFORMAT_IEEEFP) {
        // libtiff's own words were "Sorry, can not handle images with 32-bit samples".
        TIFFClose(tif);
        snprintf(msg, msgcap, "%u-bit floating-point samples (an analysis export, not a camera image); "
                 "save it with 8- or 16-bit integer samples (TIFF or PNG)", (unsigned)bits);
        return CYTO_UNSUPPORTED;
    }
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
    out->pixels = rgb; out->width = w; out->height = h; out->orientation = orientation;
    return CYTO_OK;
}

cyto_status cyto_tiff_write(const char *path, const cyto_tiff_spec *s, const void *data,
                            char *msg, size_t msgcap) {
    cyto_tiff_begin();
    TIFF *tif = TIFFOpen(path, "w");
    if (!tif) { cyto_set_message(msg, msgcap, cyto_tiff_message[0] ? cyto_tiff_message : "cannot create the file"); return CYTO_IO; }
    TIFFSetField(tif, TIFFTAG_IMAGEWIDTH, s->width);
    TIFFSetField(tif, TIFFTAG_IMAGELENGTH, s->height);
    TIFFSetField(tif, TIFFTAG_SAMPLESPERPIXEL, s->samples_per_pixel);
    TIFFSetField(tif, TIFFTAG_BITSPERSAMPLE, s->bits_per_sample);
    TIFFSetField(tif, TIFFTAG_PLANARCONFIG, PLANARCONFIG_CONTIG);
    TIFFSetField(tif, TIFFTAG_ORIENTATION, s->orientation ? s->orientation : ORIENTATION_TOPLEFT);
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
    int ok = 1, saved_errno = 0;
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
                if (TIFFWriteTile(tif, tile, tx, ty, 0, 0) < 0) { ok = 0; saved_errno = errno; }
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
            if (TIFFWriteScanline(tif, row, y, 0) < 0) { ok = 0; saved_errno = errno; }
        }
        free(row);
    }
    if (ok && !TIFFWriteDirectory(tif)) { ok = 0; saved_errno = errno; }
    TIFFClose(tif);
    if (!ok) {
        // libtiff says "Write error at scanline 257"; the reason (a full disk) is errno's.
        const char *what = cyto_tiff_message[0] ? cyto_tiff_message : "libtiff could not write the image";
        if (saved_errno) snprintf(msg, msgcap, "%s (%s)", what, strerror(saved_errno));
        else cyto_set_message(msg, msgcap, what);
        return CYTO_IO;
    }
    return CYTO_OK;
}
