// swift-tools-version:6.0
// libFuzzer targets for the decoders of untrusted input (see scripts/fuzz/run.sh):
//   swift build -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library
// Each target is one file defining LLVMFuzzerTestOneInput; seeds live in Corpus/<Target>/.
import PackageDescription

let targets = ["FuzzNetConf", "FuzzPodENIAnnotation", "FuzzRPCFrame", "FuzzWatchEvent"]

let package = Package(
    name: "Fuzz",
    platforms: [.macOS(.v14)],
    dependencies: [.package(name: "aws-sg-pods", path: "..")],
    targets: [.target(name: "FuzzDriver")] + targets.map {
        .executableTarget(name: $0, dependencies: ["FuzzDriver", .product(name: "WireDecoders", package: "aws-sg-pods")])
    }
)
