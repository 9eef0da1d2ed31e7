/// The CytoOpenCL module. See README.md, section Architecture.
public enum CytoOpenCLModule { public static let name = "CytoOpenCL" }
