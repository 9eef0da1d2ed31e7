// The OpenCL C sources beside this file, embedded at build time by SwiftPM
// (`.embedInCode` resources, one per `*.cl` file; see Package.swift). This is the
// only Swift file in Kernels/: the `.cl` files stay the single source of every
// kernel, and a built `cytocl` carries them wherever it is copied.

/// File name -> OpenCL C source, byte for byte as in Kernels/.
public enum KernelFiles {
    public static let sources: [String: String] = {
        func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }
        return [
            "augment.cl": text(PackageResources.augment_cl),
            "conv.cl": text(PackageResources.conv_cl),
            "dense.cl": text(PackageResources.dense_cl),
            "elementwise.cl": text(PackageResources.elementwise_cl),
            "loss.cl": text(PackageResources.loss_cl),
            "optim.cl": text(PackageResources.optim_cl),
            "pool.cl": text(PackageResources.pool_cl),
            "reduce.cl": text(PackageResources.reduce_cl),
        ]
    }()
}
