/// The version of CytoCL: what `cytocl --version` prints, and part of the OpenCL
/// kernel-cache key (a new version never reuses binaries built by an old one).
public let cytoCLVersion = "0.1.0"
