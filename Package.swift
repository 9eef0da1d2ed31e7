// swift-tools-version: 6.1
// CytoCL: small CNNs for single-cell blood images, on the CPU or any OpenCL device.
import Foundation
import PackageDescription

/// One binary for every x86-64 CPU: the CPU backend's heavy loops
/// (Sources/CytoCPUAVX512, one source) are compiled three times, for skylake-avx512
/// (x86-64-v4: AVX-512, 16-float vectors), haswell (x86-64-v3: AVX2 + FMA, 8-float
/// vectors) and baseline x86-64, and CytoCPU picks the best the CPU supports at run
/// time (`CPUPath`). Everything else is built for the baseline. On other
/// architectures the three copies build without a target CPU and the portable one
/// is used.
let isX86 = {
    #if arch(x86_64)
        return true
    #else
        return false
    #endif
}()
/// `-Ounchecked` drops overflow and bounds checks. Only the inner numeric loops get
/// it (CPU kernels, t-SNE), where it was measured to pay; parsers, file formats,
/// the trainer and the CLI keep every check.
let numericKernels: [SwiftSetting] = [.unsafeFlags(["-Ounchecked"], .when(configuration: .release))]
/// One copy of the CPU kernels. Baseline x86-64 has no FMA instruction: fused
/// multiply-adds would become calls to the software `fmaf` (measured 40x slower),
/// so that copy multiplies and adds (CYTOCL_NO_FMA).
func cpuKernels(_ cpu: String) -> [SwiftSetting] {
    guard isX86 else { return numericKernels }
    return [.unsafeFlags(["-target-cpu", cpu])] + (cpu == "x86-64" ? [.define("CYTOCL_NO_FMA")] : []) + numericKernels
}

/// The OpenCL C sources in Kernels/ are the only copy: SwiftPM embeds each one in
/// the `CytoKernels` module at build time, so a copied `cytocl` carries them.
let kernelFiles = ((try? FileManager.default.contentsOfDirectory(atPath: Context.packageDirectory + "/Kernels")) ?? [])
    .filter { $0.hasSuffix(".cl") }.sorted()

let package = Package(
    name: "CytoCL",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "cytocl", targets: ["cytocl"])
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        // The labelling page's HTTP server (`cytocl label`, CytoLabel only). Its default
        // traits pull in swift-configuration, which CytoCL does not use: off, to keep the
        // build shorter (tools version 6.1 for `traits:`).
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1", traits: []),
        // Hummingbird's own dependencies, named for the bound port (NIOCore) and the log level.
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.14.0"),
    ],
    targets: [
        .systemLibrary(name: "COpenCL", path: "Sources/COpenCL"),
        // C wrappers around libpng, libtiff and libjpeg (the calls that need setjmp or C
        // varargs); the libraries come from Debian's libpng-dev, libtiff-dev, libjpeg-dev.
        .target(
            name: "CImageCodecs",
            linkerSettings: [.linkedLibrary("png16"), .linkedLibrary("tiff"), .linkedLibrary("jpeg")]),
        // libhdf5 for Keras .h5 import. Debian/Ubuntu keep the serial build's headers in
        // /usr/include/hdf5/serial and libhdf5.so in .../hdf5/serial; `pkg-config hdf5`
        // (installed by scripts/setup) names both there and the plain places elsewhere.
        .systemLibrary(
            name: "CHDF5", path: "Sources/CHDF5", pkgConfig: "hdf5",
            providers: [.apt(["libhdf5-dev"]), .brew(["hdf5"])]),
        .target(
            name: "CytoKernels", path: "Kernels", sources: ["KernelFiles.swift"],
            resources: kernelFiles.map { .embedInCode($0) }),
        // Utilities every module uses: atomic files, CSV, strict JSON, parallel loops,
        // the seeded RNG, memory limits, OS paths, text lines, the error type.
        .target(name: "CytoSupport"),
        .target(name: "CytoCore", dependencies: ["CytoSupport"]),
        .target(name: "CCPUFeatures"),
        .target(name: "CytoCPUAVX512", dependencies: ["CytoCore"], swiftSettings: cpuKernels("skylake-avx512")),
        .target(name: "CytoCPUAVX2", dependencies: ["CytoCore"], swiftSettings: cpuKernels("haswell")),
        .target(name: "CytoCPUPortable", dependencies: ["CytoCore"], swiftSettings: cpuKernels("x86-64")),
        .target(
            name: "CytoCPU", dependencies: ["CytoCore", "CCPUFeatures", "CytoCPUAVX512", "CytoCPUAVX2", "CytoCPUPortable"],
            swiftSettings: numericKernels),
        .target(name: "CytoOpenCL", dependencies: ["CytoCore", "COpenCL", "CytoKernels"]),
        .target(name: "CytoData", dependencies: ["CytoSupport", "CImageCodecs"]),
        .target(name: "CytoTrain", dependencies: ["CytoCore", "CytoData"]),
        .target(name: "CytoSweep", dependencies: ["CytoCore", "CytoData", "CytoTrain", "CytoSelect"]),
        .target(name: "CytoBackends", dependencies: ["CytoCore", "CytoCPU", "CytoOpenCL"]),
        .target(name: "CytoExplain", dependencies: ["CytoCore"], swiftSettings: numericKernels),
        .target(name: "CytoSelect", dependencies: ["CytoCore", "CytoData", "CytoTrain", "CytoExplain"]),
        .target(name: "CytoReport", dependencies: ["CytoCore", "CytoData", "CytoTrain", "CytoSweep", "CytoExplain"]),
        .target(name: "CytoInterop", dependencies: ["CytoCore", "CHDF5"]),
        // The labelling page (`cytocl label`): the only module besides the CLI that pulls in
        // SwiftNIO, through Hummingbird.
        .target(
            name: "CytoLabel",
            dependencies: [
                "CytoCore", "CytoData", "CytoTrain", "CytoSweep", "CytoSelect", "CytoReport",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]),
        // The Keras reference vectors of Tests/Fixtures/reference, compiled in (C23 #embed).
        .target(name: "CReferenceFixtures"),
        .target(name: "CytoReferenceData", dependencies: ["CytoCore", "CReferenceFixtures"]),
        .executableTarget(
            name: "cytocl",
            dependencies: [
                "CytoCore", "CytoCPU", "CytoOpenCL", "CytoData", "CytoTrain", "CytoSweep", "CytoBackends", "CytoExplain", "CytoReport",
                "CytoInterop",
                "CytoReferenceData", "CytoSelect", "CytoLabel",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        // What the test targets share: temporary folders, closeness checks, running `cytocl`.
        .target(name: "CytoTestSupport", path: "Tests/CytoTestSupport"),
        .testTarget(name: "CytoCoreTests", dependencies: ["CytoCore"]),
        .testTarget(name: "CytoCPUTests", dependencies: ["CytoCore", "CytoCPU", "CytoReferenceData"]),
        .testTarget(name: "CytoOpenCLTests", dependencies: ["CytoTestSupport", "CytoCore", "CytoCPU", "CytoOpenCL"]),
        .testTarget(name: "CytoDataTests", dependencies: ["CytoTestSupport", "CytoCore", "CytoData"]),
        .testTarget(
            name: "CytoTrainTests",
            dependencies: [
                "CytoTestSupport", "CytoCore", "CytoCPU", "CytoOpenCL", "CytoData", "CytoTrain", "CytoSweep", "CytoBackends",
                "CytoReport",
                "CytoReferenceData",
            ]),
        .testTarget(
            name: "CytoExplainTests",
            dependencies: [
                "CytoTestSupport",
                "CytoCore", "CytoCPU", "CytoOpenCL", "CytoExplain",
                "CytoReferenceData",
            ]),
        .testTarget(name: "CytoReportTests", dependencies: ["CytoCore", "CytoTrain", "CytoSweep", "CytoReport"]),
        .testTarget(name: "CytoSelectTests", dependencies: ["CytoTestSupport", "CytoCore", "CytoCPU", "CytoData", "CytoTrain", "CytoSelect"]),
        .testTarget(name: "CytoLabelTests", dependencies: ["CytoTestSupport", "CytoCore", "CytoData", "CytoCPU", "CytoTrain", "CytoReport", "CytoLabel"]),
        .testTarget(name: "CLITests", dependencies: ["CytoTestSupport", "cytocl", "CytoCore", "CytoData"]),
        .testTarget(
            name: "CytoInteropTests",
            dependencies: [
                "CytoTestSupport",
                "CytoCore", "CytoCPU", "CytoData", "CytoTrain",
                "CytoInterop", "cytocl",
            ]),
    ],
    swiftLanguageModes: [.v6]
)
