// OpenCL 1.2 API from opencl-headers, linked against the ocl-icd loader (libOpenCL).
#define CL_TARGET_OPENCL_VERSION 120
#include <CL/cl.h>
