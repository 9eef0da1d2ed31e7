// libhdf5 (serial) C API, for reading Keras .h5 files.
//
// The library is linked through `pkg-config hdf5` (Package.swift): on Debian and
// Ubuntu that names /usr/include/hdf5/serial and the libhdf5_serial library.
// HDF5's constants (H5P_DEFAULT, H5T_NATIVE_FLOAT, H5F_ACC_RDONLY, ...) are macros
// that call H5open() or cast, which Swift cannot import, so they are wrapped in
// inline functions below.
#if __has_include(<hdf5.h>)
#include <hdf5.h>
#elif __has_include(<hdf5/serial/hdf5.h>)
#include <hdf5/serial/hdf5.h>
#else
#error "hdf5.h not found: install libhdf5-dev (Debian/Ubuntu) or hdf5 (Homebrew)"
#endif

static inline hid_t cyto_h5p_default(void) { return H5P_DEFAULT; }
static inline hid_t cyto_h5s_all(void) { return H5S_ALL; }
static inline unsigned cyto_h5f_acc_rdonly(void) { return H5F_ACC_RDONLY; }
static inline hid_t cyto_h5t_native_float(void) { return H5T_NATIVE_FLOAT; }
static inline hid_t cyto_h5t_c_s1(void) { return H5T_C_S1; }
static inline size_t cyto_h5t_variable(void) { return H5T_VARIABLE; }

/// Turns off HDF5's automatic error-stack printing: failures are reported once,
/// as a Swift error naming the file and the object.
static inline void cyto_h5_silence_errors(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

#ifdef __linux__
#include <sys/prctl.h>
#include <signal.h>
/// In a forked reader: be killed when the parent dies, so a reader stuck in libhdf5
/// does not outlive a command that was interrupted or timed out.
static inline void cyto_die_with_parent(void) { prctl(PR_SET_PDEATHSIG, SIGKILL); }
#else
static inline void cyto_die_with_parent(void) {}
#endif
