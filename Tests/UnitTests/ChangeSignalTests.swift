import IPAMDCore
import Testing

/// The wake-up primitive of ipamd's waits: a change made while the waiter was busy is not lost.
@Suite struct ChangeSignalTests {
    @Test func aChangeWhileBusyEndsTheNextWaitAtOnce() async {
        let signal = ChangeSignal()
        let seen = signal.generation
        signal.broadcast()  // while the waiter was busy (sizing the pool, say)
        let started = ContinuousClock.now
        await signal.waitForChange(after: seen, until: .now + .seconds(30))
        #expect(ContinuousClock.now - started < .seconds(10), "returned at once, not at the deadline")
    }

    @Test func aWaitForTheNextChangeIgnoresEarlierOnes() async {
        let signal = ChangeSignal()
        signal.broadcast()
        let deadline = ContinuousClock.now + .milliseconds(200)
        await signal.waitForNextChange(until: deadline)
        #expect(ContinuousClock.now >= deadline, "an earlier change does not count")
    }

    @Test func closeEndsEveryWait() async {
        let signal = ChangeSignal()
        let seen = signal.generation
        async let waiting: Void = signal.waitForChange(after: seen, until: .now + .seconds(30))
        while signal.waiterCount == 0 { await Task.yield() }
        signal.close()
        await waiting
        await signal.waitForNextChange(until: .now + .seconds(30))  // closed: returns at once
    }
}
