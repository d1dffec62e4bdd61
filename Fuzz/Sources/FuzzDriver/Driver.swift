// SwiftPM links each executable target with `--defsym main=<Target>_main`; with -parse-as-library
// there is no such function, so each target defines it and hands the command line to libFuzzer's
// driver here (what libFuzzer's own main does).

@_silgen_name("LLVMFuzzerRunDriver")
private func runDriver(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
                       _ callback: @convention(c) (UnsafeRawPointer, Int) -> CInt) -> CInt

public typealias FuzzInput = @convention(c) (UnsafeRawPointer, Int) -> CInt

/// Runs libFuzzer with `argc`/`argv` on `test` (the target's LLVMFuzzerTestOneInput).
public func runLibFuzzer(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?, _ test: FuzzInput) -> CInt {
    var argc = argc, argv = argv
    return runDriver(&argc, &argv, test)
}
