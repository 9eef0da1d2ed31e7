/// The CytoCPU module. See README.md, section Architecture.
public enum CytoCPUModule { public static let name = "CytoCPU" }
