// Every module that imports CytoCore (the network, its backends and model files) also
// sees the utilities it is built on (atomic files, CSV, strict JSON, parallel loops,
// the seeded RNG, memory limits, the error type), which live in the leaf module
// CytoSupport so that modules needing only those need not depend on the network.
@_exported import CytoSupport
