import AWSCloud
import Foundation
import Logging
import TestSupport

// Shared by the cloud tests: fast retry policies, a settable clock, canned HTTP answers and a
// log handler that keeps every line (to prove no secret reaches a log).

/// Retries as the clients do, with delays short enough for tests.
let fastRetry = RetryPolicy(maxAttempts: 5, initialDelay: .milliseconds(10), maxDelay: .milliseconds(40), jitter: .none)

/// async-http-client's shared client: real HTTP to the simulator on loopback.
let realHTTP = AsyncHTTPClientTransport.shared(logger: quiet)

/// Generous: many simulators may start at once on two cores, and success paths must not time out.
let roomyTimeout: Duration = .seconds(10)

/// The clock the credentials chain reads, moved by the test instead of by waiting.
final class TestClock: @unchecked Sendable {
    // @unchecked: `date` is only touched under `lock`.
    private let lock = NSLock()
    private var date: Date
    init(_ start: Date = Date()) { date = start }
    var now: @Sendable () -> Date { { [self] in lock.lock(); defer { lock.unlock() }; return date } }
    func advance(_ seconds: TimeInterval) { lock.lock(); date += seconds; lock.unlock() }
}

/// Canned answers in order (the last repeats), and every request it was sent.
final class StubTransport: CloudHTTPTransport, @unchecked Sendable {
    // @unchecked: both arrays are only touched under `lock`.
    private let lock = NSLock()
    private var answers: [Result<CloudHTTPResponse, CloudError>]
    private var sent: [CloudHTTPRequest] = []

    init(_ answers: [Result<CloudHTTPResponse, CloudError>]) { self.answers = answers }
    convenience init(status: Int = 200, _ bodies: String...) {
        self.init(bodies.map { .success(CloudHTTPResponse(status: status, body: Array($0.utf8))) })
    }

    var requests: [CloudHTTPRequest] { lock.lock(); defer { lock.unlock() }; return sent }

    func send(_ request: CloudHTTPRequest) async throws(CloudError) -> CloudHTTPResponse {
        let answer = lock.withLock {
            sent.append(request)
            return answers.count > 1 ? answers.removeFirst() : answers[0]
        }
        return try answer.get()
    }
}

extension CloudHTTPRequest {
    var bodyText: String { String(decoding: body, as: UTF8.self) }
    func header(_ name: String) -> String? { headers.first { $0.name.lowercased() == name.lowercased() }?.value }
}

/// Keeps every log line with its metadata, at trace level.
final class CapturedLogs: @unchecked Sendable {
    // @unchecked: `lines` is only touched under `lock`.
    private let lock = NSLock()
    private var lines: [String] = []

    func append(_ line: String) { lock.lock(); lines.append(line); lock.unlock() }
    var all: [String] { lock.lock(); defer { lock.unlock() }; return lines }

    var logger: Logger {
        var l = Logger(label: "cloud-test") { label in CapturingHandler(label: label, sink: self) }
        l.logLevel = .trace
        return l
    }
}

struct CapturingHandler: LogHandler {
    let label: String
    let sink: CapturedLogs
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        sink.append("\(event.level) \(event.message) \(metadata.merging(event.metadata ?? [:]) { $1 }) \(event.error.map { "\($0)" } ?? "")")
    }
}

/// Thrown error of a typed-throws call, or nil when it succeeded.
func cloudError<T>(_ body: () async throws(CloudError) -> T) async -> CloudError? {
    do throws(CloudError) {
        _ = try await body()
        return nil
    } catch {
        return error
    }
}

/// Simulators shared between tests, at most `limit` alive at once. Each costs seconds of CPU
/// to start (moto's import), and with one per test the whole suite was CPU-bound on starting
/// them. A test leases one exclusively; tests that change the model (ENIs, CIDRs) ask for a
/// fresh one, which is thrown away after. A shared one is cleaned before reuse: faults cleared,
/// counters zeroed, the default container token back.
actor SimulatorPool {
    static let shared = SimulatorPool(limit: 4)

    let limit: Int
    private var live = 0  // leased and idle together
    private var idle: [CloudSimulator] = []
    private var waiters: [CheckedContinuation<Void, Never>] = []

    init(limit: Int) { self.limit = limit }

    func lease(fresh: Bool) async throws -> CloudSimulator {
        while true {
            if !fresh, let sim = idle.popLast() { return sim }
            if live < limit {
                live += 1
                do { return try await CloudSimulator.start() } catch { live -= 1; wakeOne(); throw error }
            }
            if fresh, let sim = idle.popLast() {
                // Make room for the fresh one.
                sim.stop()
                live -= 1
                continue
            }
            await withCheckedContinuation { waiters.append($0) }
        }
    }

    func giveBack(_ sim: CloudSimulator, reusable: Bool) {
        if reusable {
            sim.imdsFault(status: 0, count: 0)
            sim.ec2Fault(code: "RequestLimitExceeded", status: 503, count: 0)
            sim.containerToken(CloudSimulator.defaultContainerToken)
            sim.resetCounts()
            idle.append(sim)
        } else {
            sim.stop()
            live -= 1
        }
        wakeOne()
    }

    private func wakeOne() {
        if !waiters.isEmpty { waiters.removeFirst().resume() }
    }
}

/// Runs `body` with a simulator of its own for the time being. `fresh`: one nobody used before
/// and nobody will after (for tests that change the model or leave slow answers pending).
func withSimulator<T>(fresh: Bool = false, _ body: (CloudSimulator) async throws -> T) async throws -> T {
    let sim = try await SimulatorPool.shared.lease(fresh: fresh)
    do {
        let result = try await body(sim)
        await SimulatorPool.shared.giveBack(sim, reusable: !fresh)
        return result
    } catch {
        await SimulatorPool.shared.giveBack(sim, reusable: false)
        throw error
    }
}
