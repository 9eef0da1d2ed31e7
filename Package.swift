// swift-tools-version: 6.0
// CytoCL: small CNNs for single-cell blood images, on the CPU or any OpenCL device.
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
let fastMath: [SwiftSetting] = (isX86 && !portable)
    ? [.unsafeFlags(["-target-cpu", "haswell"]), .define("CYTOCL_AVX2"),
       .unsafeFlags(["-Ounchecked"], .when(configuration: .release))]
    : [.unsafeFlags(["-Ounchecked"], .when(configuration: .release))]

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
        .target(name: "CytoCPU", dependencies: ["CytoCore"], swiftSettings: fastMath),
        .target(name: "CytoOpenCL", dependencies: ["CytoCore", "COpenCL"], swiftSettings: fastMath),
        .target(name: "CytoData", dependencies: ["CytoCore", "CImageCodecs"], swiftSettings: fastMath),
        .target(name: "CytoTrain", dependencies: ["CytoCore", "CytoCPU", "CytoOpenCL", "CytoData",
                                                  .product(name: "Logging", package: "swift-log")],
                swiftSettings: fastMath),
        .target(name: "CytoExplain", dependencies: ["CytoCore"], swiftSettings: fastMath),
        // The Keras reference vectors of Tests/Fixtures/reference, compiled in (C23 #embed).
        .target(name: "CReferenceFixtures"),
        .target(name: "CytoReferenceData", dependencies: ["CytoCore", "CReferenceFixtures"]),
        .target(name: "CytoReport", dependencies: ["CytoCore", "CytoTrain"], swiftSettings: fastMath),
        .executableTarget(name: "cytocl", dependencies: [
            "CytoCore", "CytoCPU", "CytoOpenCL", "CytoData", "CytoTrain", "CytoExplain", "CytoReport", "CytoReferenceData",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ], swiftSettings: fastMath),
        .testTarget(name: "CytoCoreTests", dependencies: ["CytoCore"]),
        .testTarget(name: "CytoCPUTests", dependencies: ["CytoCore", "CytoCPU", "CytoReferenceData"]),
        .testTarget(name: "CytoOpenCLTests", dependencies: ["CytoCore", "CytoCPU", "CytoOpenCL"]),
        .testTarget(name: "CytoDataTests", dependencies: ["CytoCore", "CytoData"]),
        .testTarget(name: "CytoTrainTests", dependencies: ["CytoCore", "CytoCPU", "CytoOpenCL", "CytoData", "CytoTrain",
                                                           "CytoReferenceData"]),
        .testTarget(name: "CytoExplainTests", dependencies: ["CytoCore", "CytoCPU", "CytoOpenCL", "CytoExplain",
                                                             "CytoReferenceData"]),
        .testTarget(name: "CytoReportTests", dependencies: ["CytoCore", "CytoTrain", "CytoReport"]),
        .testTarget(name: "CLITests", dependencies: ["cytocl"]),
    ],
    swiftLanguageModes: [.v5]
)
