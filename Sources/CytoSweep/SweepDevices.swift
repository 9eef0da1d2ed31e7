import Foundation

/// How many cells a sweep runs at once on the CPU backend by default (`--devices`
/// entries are `BackendWorkers`, parsed with the backend selectors).
public enum SweepDevices {
    /// Threads per cell that gave the most cells per hour on the CPU backend at the
    /// paper's batch 5 (small training sets, 257x257): one cell per core beats one
    /// cell on all cores, because at batch 5 much of a step (dense layers, loss,
    /// optimizer, pooling of the small late layers, thread hand-offs) does not
    /// spread over threads. Measured with `sweep --jobs` side by side; see README.
    public static let defaultThreadsPerCell = 1

    /// Cells run at once by default on `cores` cores (the sweep also caps it at the
    /// cells left to run).
    public static func defaultCPUCells(cores: Int) -> Int { max(1, cores / defaultThreadsPerCell) }
}
