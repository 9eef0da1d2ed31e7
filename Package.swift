// swift-tools-version: 6.0
// CytoCL: small CNNs for single-cell blood images, on the CPU or any OpenCL device.
import PackageDescription

/// The CPU kernels (Sources/CytoKernelsAVX512, one source) are compiled three times:
/// for skylake-avx512 (x86-64-v4: AVX-512, 16-float vectors), haswell (x86-64-v3: AVX2 + FMA, 8-float vectors)
/// and baseline x86-64, and CytoCPU picks the best the CPU supports at run time
/// (`CPUPath`), so one binary runs on any x86-64 machine. Everything else is built
/// for the baseline. On other architectures all three copies build without a
/// target CPU and the portable one is used.
let isX86 = {
    #if arch(x86_64)
    return true
    #else
    return false
    #endif
}()
let optimized: [SwiftSetting] = [.unsafeFlags(["-Ounchecked"], .when(configuration: .release))]
func kernels(_ cpu: String) -> [SwiftSetting] {
    guard isX86 else { return optimized }
    // Baseline x86-64 has no FMA instruction: fused multiply-adds would become calls
    // to the software fmaf (measured 40x slower), so that copy multiplies and adds.
    return [.unsafeFlags(["-target-cpu", cpu])] + (cpu == "x86-64" ? [.define("CYTOCL_NO_FMA")] : []) + optimized
}
let fastMath = optimized

let package = Package(
    name: "CytoCL",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "cytocl", targets: ["cytocl"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
    ],
    targets: [
        .systemLibrary(name: "COpenCL", path: "Sources/COpenCL"),
        .systemLibrary(name: "CImageCodecs", path: "Sources/CImageCodecs"),
        .target(name: "CytoCore", swiftSettings: fastMath),
        .target(name: "CCPUFeatures"),
        .target(name: "CytoKernelsAVX512", dependencies: ["CytoCore"], swiftSettings: kernels("skylake-avx512")),
        .target(name: "CytoKernelsAVX2", dependencies: ["CytoCore"], swiftSettings: kernels("haswell")),
        .target(name: "CytoKernelsPortable", dependencies: ["CytoCore"], swiftSettings: kernels("x86-64")),
        .target(name: "CytoCPU", dependencies: ["CytoCore", "CCPUFeatures", "CytoKernelsAVX512", "CytoKernelsAVX2",
                                                "CytoKernelsPortable"], swiftSettings: fastMath),
        .target(name: "CytoOpenCL", dependencies: ["CytoCore", "COpenCL"], swiftSettings: fastMath),
        .target(name: "CytoData", dependencies: ["CytoCore", "CImageCodecs"], swiftSettings: fastMath),
        .target(name: "CytoTrain", dependencies: ["CytoCore", "CytoCPU", "CytoOpenCL", "CytoData",
                                                  .product(name: "Logging", package: "swift-log")],
                swiftSettings: fastMath),
        .target(name: "CytoExplain", dependencies: ["CytoCore"], swiftSettings: fastMath),
        .target(name: "CytoReport", dependencies: ["CytoCore", "CytoTrain"], swiftSettings: fastMath),
        .executableTarget(name: "cytocl", dependencies: [
            "CytoCore", "CytoCPU", "CytoOpenCL", "CytoData", "CytoTrain", "CytoExplain", "CytoReport",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ], swiftSettings: fastMath),
        .testTarget(name: "CytoCoreTests", dependencies: ["CytoCore"]),
        .testTarget(name: "CytoCPUTests", dependencies: ["CytoCore", "CytoCPU"]),
        .testTarget(name: "CytoOpenCLTests", dependencies: ["CytoCore", "CytoCPU", "CytoOpenCL"]),
        .testTarget(name: "CytoDataTests", dependencies: ["CytoCore", "CytoData"]),
        .testTarget(name: "CytoTrainTests", dependencies: ["CytoCore", "CytoCPU", "CytoOpenCL", "CytoData", "CytoTrain"]),
        .testTarget(name: "CytoExplainTests", dependencies: ["CytoCore", "CytoCPU", "CytoOpenCL", "CytoExplain"]),
        .testTarget(name: "CytoReportTests", dependencies: ["CytoCore", "CytoTrain", "CytoReport"]),
        .testTarget(name: "CLITests", dependencies: ["cytocl"]),
    ],
    swiftLanguageModes: [.v5]
)
