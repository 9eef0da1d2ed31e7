// libpng, libtiff and libjpeg-turbo (Debian: libpng-dev, libtiff-dev, libjpeg-dev).
#include <stdio.h>
#include <png.h>
#include <tiffio.h>
#include <jpeglib.h>
