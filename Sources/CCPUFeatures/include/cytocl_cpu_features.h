#ifndef CYTOCL_CPU_FEATURES_H
#define CYTOCL_CPU_FEATURES_H

/// The best x86-64 micro-architecture level this CPU and OS support for CytoCL's
/// CPU kernels: 4 (x86-64-v4: AVX-512 F/BW/CD/DQ/VL), 3 (x86-64-v3: AVX2, FMA,
/// BMI1/2, F16C, MOVBE, LZCNT), 0 otherwise or on other architectures.
int cytocl_cpu_level(void);

#endif
