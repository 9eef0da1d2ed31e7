import Foundation

/// CPU seconds consumed by the calling thread (`CLOCK_THREAD_CPUTIME_ID`). On a machine
/// shared with other work, wall-clock seconds include the time other processes held the
/// core; a sweep cell on a one-thread CPU backend computes entirely on its worker
/// thread, so this clock measures what the cell itself cost, however loaded the machine.
public enum ThreadCPUTime {
    public static func now() -> Double {
        var t = timespec()
        guard clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t) == 0 else { return 0 }
        return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
    }
}
