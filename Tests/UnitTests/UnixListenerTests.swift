import Foundation
import IPAMDCore
import IPAMDProtocol
import Synchronization
import Testing

/// The acceptor pool: grows past its idle threads when every one is busy, shrinks back when idle.
@Suite struct UnixListenerTests {
    /// 20 connections whose handlers all block until all 20 are inside: only possible if the
    /// pool (2 idle threads at start) grows to serve them at once, as waiting AddNetworks need.
    @Test func servesMoreConcurrentConnectionsThanIdleThreads() throws {
        let dir = tempDir()
        let listener = try UnixListener(path: dir + "/s.sock", logger: quiet, idleTimeout: 1, keepIdle: 2)
        let inside = Mutex(0)
        let allInside = DispatchSemaphore(value: 0)
        let release = DispatchSemaphore(value: 0)
        let n = 20
        listener.start { s in
            if inside.withLock({ $0 += 1; return $0 }) == n { allInside.signal() }
            release.wait()
            s.close()
        }
        let clients = try (0..<n).map { _ in try UnixStream.connect(path: dir + "/s.sock", timeoutSeconds: 5) }
        #expect(allInside.wait(timeout: .now() + 20) == .success, "only \(inside.withLock { $0 }) of \(n) connections were being served at once")
        #expect(listener.threadCount >= n)
        for _ in 0..<n { release.signal() }
        for c in clients { c.close() }
        listener.shutdown()
        #expect(listener.threadCount == 0)
    }

    /// After a burst, acceptors idle for the timeout retire until `keepIdle` are left.
    @Test func idleAcceptorsRetireDownToKeepIdle() throws {
        let dir = tempDir()
        let listener = try UnixListener(path: dir + "/s.sock", logger: quiet, idleTimeout: 1, keepIdle: 2)
        let release = DispatchSemaphore(value: 0)
        let inside = Mutex(0)
        listener.start { s in
            inside.withLock { $0 += 1 }
            release.wait()
            s.close()
        }
        let clients = try (0..<8).map { _ in try UnixStream.connect(path: dir + "/s.sock", timeoutSeconds: 5) }
        let deadline = Date().addingTimeInterval(20)
        while inside.withLock({ $0 }) < 8, Date() < deadline { sched_yield() }
        #expect(listener.threadCount >= 8)
        for _ in 0..<8 { release.signal() }
        for c in clients { c.close() }
        // Retirement is driven by the 1 s accept timeout; poll for it, bounded.
        while listener.threadCount > 2, Date() < deadline { usleep(50_000) }
        #expect(listener.threadCount == 2)
        // Still serving after shrinking.
        release.signal()
        let c = try UnixStream.connect(path: dir + "/s.sock", timeoutSeconds: 5)
        while inside.withLock({ $0 }) < 9, Date() < deadline { sched_yield() }
        #expect(inside.withLock { $0 } == 9)
        c.close()
        listener.shutdown()
        #expect(listener.threadCount == 0)
    }
}
