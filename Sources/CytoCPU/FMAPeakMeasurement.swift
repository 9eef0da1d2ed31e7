import CytoCPUAVX2
import CytoCPUAVX512
import CytoCPUPortable
import Dispatch
import Foundation
import Synchronization

/// This CPU's measured fused multiply-add limit on one kernel path, in GFLOP/s: the
/// denominator of `bench`'s "fraction of the FMA limit". All `threads` run the
/// register-only loop at once, as a training step's threads do, so turbo clocks that
/// drop when every core is busy are measured, not assumed.
public enum FMAPeakMeasurement {
    public static func gflops(path: CPUPath, threads: Int, seconds: Double = 0.25) -> Double {
        let run: @Sendable (Int, Float) -> Float
        let perIteration: Int
        switch path {
        case .avx512: run = CytoCPUAVX512.FMAPeak.run; perIteration = CytoCPUAVX512.FMAPeak.flopsPerIteration
        case .avx2: run = CytoCPUAVX2.FMAPeak.run; perIteration = CytoCPUAVX2.FMAPeak.flopsPerIteration
        case .portable: run = CytoCPUPortable.FMAPeak.run; perIteration = CytoCPUPortable.FMAPeak.flopsPerIteration
        }
        let n = max(1, threads)
        /// Seconds of wall time for `iterations` on every thread at once.
        func timed(_ iterations: Int) -> Double {
            let sink = Mutex([Float](repeating: 0, count: n))
            let start = DispatchTime.now().uptimeNanoseconds
            DispatchQueue.concurrentPerform(iterations: n) { t in
                let r = run(iterations, Float(t + 1))
                sink.withLock { $0[t] = r }
            }
            let elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            // Read the results, so no call can be dropped.
            if sink.withLock({ $0.contains { !$0.isFinite } }) { return .infinity }
            return elapsed
        }
        // Calibrate to about `seconds`, then keep the best of three (the least disturbed).
        var iterations = 1 << 16
        while timed(iterations) < seconds / 8, iterations < 1 << 34 { iterations <<= 1 }
        let scaled = max(1, Int(Double(iterations) * seconds / max(timed(iterations), 1e-6)))
        let best = (0..<3).map { _ in timed(scaled) }.min() ?? .infinity
        return Double(scaled) * Double(perIteration) * Double(n) / best / 1e9
    }
}
