// swift-tools-version: 6.0
// CytoCL: small CNNs for single-cell blood images, on the CPU or any OpenCL device.
import Foundation
import PackageDescription

/// Release builds of the numeric modules are compiled for Haswell-class CPUs (AVX2 + FMA)
/// unless CYTOCL_PORTABLE is set, because the CPU backend's SIMD loops are
/// roughly twice as fast with 256-bit FMA. Every x86-64 machine sold since 2015
/// has it; set CYTOCL_PORTABLE=1 when building for older hardware.
let isX86 = {
    #if arch(x86_64)
    return true
    #else
    return false
    #endif
}()
let portable = Context.environment["CYTOCL_PORTABLE"] != nil
let cpuTarget: [SwiftSetting] = (isX86 && !portable)
    ? [.unsafeFlags(["-target-cpu", "haswell"]), .define("CYTOCL_AVX2")] : []
/// `-Ounchecked` drops overflow and bounds checks. Only the inner numeric loops get
/// it (CPU kernels, t-SNE), where it was measured to pay; parsers, file formats,
/// the trainer and the CLI keep every check.
let numericKernels: [SwiftSetting] = cpuTarget + [.unsafeFlags(["-Ounchecked"], .when(configuration: .release))]

/// The OpenCL C sources in Kernels/ are the only copy: SwiftPM embeds each one in
/// the `CytoKernels` module at build time, so a copied `cytocl` carries them.
let kernelFiles = ((try? FileManager.default.contentsOfDirectory(atPath: Context.packageDirectory + "/Kernels")) ?? [])
    .filter { $0.hasSuffix(".cl") }.sorted()

let package = Package(
    name: "CytoCL",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "cytocl", targets: ["cytocl"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        .systemLibrary(name: "COpenCL", path: "Sources/COpenCL"),
        .systemLibrary(name: "CImageCodecs", path: "Sources/CImageCodecs"),
        // libhdf5 for Keras .h5 import. Debian/Ubuntu keep the serial build's headers in
        // /usr/include/hdf5/serial and libhdf5.so in .../hdf5/serial; `pkg-config hdf5`
        // (installed by scripts/setup) names both there and the plain places elsewhere.
        .systemLibrary(name: "CHDF5", path: "Sources/CHDF5", pkgConfig: "hdf5",
                       providers: [.apt(["libhdf5-dev"]), .brew(["hdf5"])]),
        .target(name: "CytoKernels", path: "Kernels", sources: ["KernelFiles.swift"],
                resources: kernelFiles.map { .embedInCode($0) }),
        .target(name: "CytoCore", swiftSettings: cpuTarget),
        .target(name: "CytoCPU", dependencies: ["CytoCore"], swiftSettings: numericKernels),
        .target(name: "CytoOpenCL", dependencies: ["CytoCore", "COpenCL", "CytoKernels"], swiftSettings: cpuTarget),
        .target(name: "CytoData", dependencies: ["CytoCore", "CImageCodecs"], swiftSettings: cpuTarget),
        .target(name: "CytoTrain", dependencies: ["CytoCore", "CytoData"], swiftSettings: cpuTarget),
        .target(name: "CytoBackends", dependencies: ["CytoCore", "CytoCPU", "CytoOpenCL"]),
        .target(name: "CytoExplain", dependencies: ["CytoCore"], swiftSettings: numericKernels),
        .target(name: "CytoReport", dependencies: ["CytoCore", "CytoData", "CytoTrain", "CytoExplain"]),
        .target(name: "CytoInterop", dependencies: ["CytoCore", "CHDF5"]),
        // The Keras reference vectors of Tests/Fixtures/reference, compiled in (C23 #embed).
        .target(name: "CReferenceFixtures"),
        .target(name: "CytoReferenceData", dependencies: ["CytoCore", "CReferenceFixtures"]),
        .executableTarget(name: "cytocl", dependencies: [
            "CytoCore", "CytoCPU", "CytoOpenCL", "CytoData", "CytoTrain", "CytoBackends", "CytoExplain", "CytoReport", "CytoInterop",
            "CytoReferenceData",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .testTarget(name: "CytoCoreTests", dependencies: ["CytoCore"]),
        .testTarget(name: "CytoCPUTests", dependencies: ["CytoCore", "CytoCPU", "CytoReferenceData"]),
        .testTarget(name: "CytoOpenCLTests", dependencies: ["CytoCore", "CytoCPU", "CytoOpenCL"]),
        .testTarget(name: "CytoDataTests", dependencies: ["CytoCore", "CytoData"]),
        .testTarget(name: "CytoTrainTests", dependencies: ["CytoCore", "CytoCPU", "CytoOpenCL", "CytoData", "CytoTrain",
                                                           "CytoReferenceData"]),
        .testTarget(name: "CytoExplainTests", dependencies: ["CytoCore", "CytoCPU", "CytoOpenCL", "CytoExplain",
                                                             "CytoReferenceData"]),
        .testTarget(name: "CytoReportTests", dependencies: ["CytoCore", "CytoTrain", "CytoReport"]),
        .testTarget(name: "CLITests", dependencies: ["cytocl", "CytoCore", "CytoData"]),
        .testTarget(name: "CytoInteropTests", dependencies: ["CytoCore", "CytoCPU", "CytoData", "CytoTrain",
                                                            "CytoInterop", "cytocl"]),
    ],
    swiftLanguageModes: [.v6]
)
