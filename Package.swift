// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "aws-sg-pods",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "aws-cni", targets: ["aws-cni"]),
        .executable(name: "ipamd", targets: ["ipamd"]),
        // The decoders of everything that arrives from outside (CNI config, RPC frames, pod-eni
        // annotations, watch events), for the fuzzers in Fuzz/ (a package of their own).
        .library(name: "WireDecoders", targets: ["CNI", "CNIPlugin", "IPAMDProtocol", "KubernetesWire"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        // ipamd's Kubernetes client: HTTPS to the API server, trusting only the cluster CA.
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        // kubeconfig files are YAML.
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        // Typed errno and file descriptors for the one syscall layer (SystemIO).
        .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
        // SigV4's HMAC-SHA256 and SHA-256 for the EC2 and STS clients.
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        // ipamd's one concurrency model: its servers and tasks run under a service group that
        // shuts them down gracefully on SIGTERM.
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        // ipamd's metrics: recorded through swift-metrics, exported by swift-prometheus.
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        // ipamd's subcommands (`ipamd pods`, `ipamd explain`).
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    ],
    targets: [
        // Flat C API over libnl-3 (Debian libnl-3-dev): nlshim_* symbols, ints and -errno only; no
        // libnl type leaks out. libnl-3 is linked statically so aws-cni needs nothing on the node
        // beyond libc (the shim builds its own route messages, so libnl-route is not needed).
        .target(
            name: "NetlinkShim",
            cSettings: [.unsafeFlags(["-I/usr/include/libnl3"])],
            linkerSettings: [.unsafeFlags(["-Xlinker", "-l:libnl-3.a"])]
        ),
        // Flat C API over libnftables (Debian libnftables-dev): nftshim_* symbols, C strings only.
        // Linked dynamically (Debian ships no static libnftables); only ipamd uses it.
        .target(name: "NFTablesShim", linkerSettings: [.linkedLibrary("nftables")]),
        // Value types shared by planning and applying: addresses, prefixes, MACs, routes, rules.
        .target(name: "NetModel"),
        // JSON text written without Foundation's encoder, for what the plugin writes every run.
        .target(name: "JSONText"),
        // The one place that calls read/write/send/recv: EINTR and short transfers handled here,
        // errno kept as swift-system's typed Errno. Foundation-free, so aws-cni stays lean.
        .target(name: "SystemIO", dependencies: [.product(name: "SystemPackage", package: "swift-system")]),
        // Typed Swift wrapper over NetlinkShim.
        .target(name: "Netlink", dependencies: ["NetlinkShim", "NetModel"]),
        // Pure strict/standard planning: names, tables, priorities, setup and teardown plans.
        .target(name: "EnforcingMode", dependencies: ["NetModel"]),
        // Regular pods' warm pool: the reference's target arithmetic as pure values.
        .target(name: "IPAMPool", dependencies: ["NetModel"]),
        // CNI spec types: NetConf, results for every version, errors, environment.
        .target(name: "CNI", dependencies: ["NetModel", "JSONText"]),
        // ipamd RPC messages and framing, pod-eni annotation decoding; shared by both executables.
        .target(name: "IPAMDProtocol", dependencies: ["NetModel", "EnforcingMode", "SystemIO", "JSONText"]),
        // Applies plans through Netlink with rollback; sysctls; live-state discovery for DEL/CHECK.
        .target(name: "Datapath", dependencies: [
            "Netlink", "SystemIO", "NetModel", "EnforcingMode", .product(name: "Logging", package: "swift-log"),
        ]),
        // The CNI plugin's command logic (ADD/DEL/CHECK/STATUS/VERSION) behind protocols.
        .target(name: "CNIPlugin", dependencies: [
            "CNI", "IPAMDProtocol", "Datapath", "EnforcingMode", "NetModel",
            .product(name: "Logging", package: "swift-log"),
        ]),
        // Node-wide setup ipamd owns: sysctls, the nftables SNAT table, node rules, plugin install.
        .target(name: "NodeSetup", dependencies: [
            "NFTablesShim", "SystemIO", "Datapath", "Netlink", "NetModel", "EnforcingMode", .product(name: "Logging", package: "swift-log"),
        ]),
        // ipamd: config, pod-ENI sources, RPC and debug servers.
        .target(name: "IPAMDCore", dependencies: [
            "IPAMDMetrics", "IPAMDProtocol", "Datapath", "SystemIO", "NetModel", "Netlink", "NodeSetup", "EnforcingMode", "IPAMPool",
            .product(name: "Logging", package: "swift-log"),
        ]),
        // ipamd's regular-pod address pool: sized by the reference's targets through EC2, ADD and
        // DEL answered from memory; the node side of an ENI behind ENIHost.
        .target(name: "IPAMDPool", dependencies: [
            "IPAMPool", "AWSCloud", "EnforcingMode", "NetModel", "IPAMDCore", "IPAMDMetrics", "IPAMDProtocol", .product(name: "Logging", package: "swift-log"),
        ]),
        // The Kubernetes wire types (pods, lists, watch events, status) and the client's errors:
        // pure decoding, no networking, so the fuzzers build it without SwiftNIO.
        .target(name: "KubernetesWire", dependencies: ["SystemIO"]),
        // A small Kubernetes API client: config (in-cluster, kubeconfig), HTTPS transport, pod
        // list+watch loop, merge-patch with optimistic concurrency. Knows nothing of ipamd.
        .target(name: "Kubernetes", dependencies: [
            "KubernetesWire", "SystemIO",
            .product(name: "AsyncHTTPClient", package: "async-http-client"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
            .product(name: "Logging", package: "swift-log"),
            "Yams",
        ]),
        // The AWS side: IMDSv2, the credentials chain, SigV4, the EC2 query API (and STS for
        // web identity). Knows nothing of ipamd.
        .target(name: "AWSCloud", dependencies: [
            "NetModel",
            .product(name: "AsyncHTTPClient", package: "async-http-client"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        // What ipamd measures and the catalogue of its metric names (swift-metrics API only).
        .target(name: "IPAMDMetrics", dependencies: [.product(name: "CoreMetrics", package: "swift-metrics")]),
        // ipamd's servers on SwiftNIO: the RPC socket, HTTP (NIOHTTP1) for introspection,
        // graceful shutdown under swift-service-lifecycle.
        .target(name: "IPAMDServer", dependencies: [
            "IPAMDMetrics", .product(name: "Prometheus", package: "swift-prometheus"), .product(name: "CoreMetrics", package: "swift-metrics"),
            "IPAMDCore", "IPAMDProtocol", "NodeSetup", "NetModel", "JSONText", "SystemIO",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        // ipamd's cloud side: discovery of the node from metadata and EC2, the late trunk, the
        // VPC CIDR refresh. Logic behind AWSCloud's protocols.
        .target(name: "IPAMDCloud", dependencies: [
            .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
            "IPAMDMetrics", "AWSCloud", "IPAMDCore", "IPAMDPool", "Datapath", "EnforcingMode", "NodeSetup", "Netlink", "NetModel", "SystemIO",
            .product(name: "Logging", package: "swift-log"),
        ]),
        // ipamd's Kubernetes pod-ENI source: the watch feeding IPAMDCore's pod cache, node signalling.
        .target(name: "IPAMDKubernetes", dependencies: [
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"), "IPAMDMetrics", "Kubernetes", "IPAMDCore", "IPAMDProtocol", .product(name: "Logging", package: "swift-log"),
        ]),
        // Fully static (glibc too): no dynamic loader, no shared libraries to map and bind. The
        // runtime execs the plugin for every pod, and the loader was most of an exec's cost.
        // Release only: a debug link lacks the static Foundation support libraries. The static
        // FoundationEssentials needs its two support libraries named: modules compiled without
        // --static-swift-stdlib do not ask for them, and a plain `swift build -c release` (no
        // Makefile) must link too.
        .executableTarget(name: "aws-cni", dependencies: [
            "CNIPlugin", "SystemIO", "CNI", "IPAMDProtocol", "Datapath", "Netlink", .product(name: "Logging", package: "swift-log"),
        ], linkerSettings: [
            .unsafeFlags(["-static-executable"], .when(configuration: .release)),
            .linkedLibrary("_FoundationCollections", .when(configuration: .release)),
            .linkedLibrary("_FoundationCShims", .when(configuration: .release)),
        ]),
        .executableTarget(name: "ipamd", dependencies: [
            "IPAMDCore", "IPAMDServer", "IPAMDMetrics", .product(name: "Metrics", package: "swift-metrics"),
            .product(name: "ArgumentParser", package: "swift-argument-parser"), .product(name: "AsyncHTTPClient", package: "async-http-client"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"), "IPAMDCloud", "IPAMDPool", "IPAMPool", "AWSCloud", "IPAMDKubernetes", "NodeSetup", "Netlink", "Datapath", "EnforcingMode", .product(name: "Logging", package: "swift-log"),
        ], linkerSettings: [.unsafeFlags(["-Xlinker", "--no-export-dynamic"])]),
        // Shared by the test targets only: the in-memory kernel, the in-process ipamd, throwaway
        // network namespaces, node snapshots, the model-based sequence runner.
        .target(name: "TestSupportShim"),
        .target(name: "TestSupport", dependencies: [
            "IPAMDServer", .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"), "TestSupportShim", "NetModel", "Netlink", "Datapath", "EnforcingMode", "CNI", "CNIPlugin", "IPAMDProtocol", "IPAMDCore",
            "SystemIO", "AWSCloud", "IPAMPool", "IPAMDPool", .product(name: "Logging", package: "swift-log"),
        ]),
        .testTarget(name: "UnitTests", dependencies: [
            "IPAMDServer", .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"), "IPAMDCloud", "AWSCloud", "NetModel", "EnforcingMode", "CNI", "IPAMDProtocol", "CNIPlugin", "IPAMDCore", "Datapath", "NodeSetup", "TestSupport", "IPAMPool", "IPAMDPool",
        ]),
        // Against a local test API server (scripts/tests/fake-apiserver.py) over HTTPS on loopback.
        .testTarget(name: "KubernetesTests", dependencies: [
            "IPAMDServer", .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"), "Kubernetes", "IPAMDKubernetes", "IPAMDCore", "IPAMDProtocol", "TestSupport", .product(name: "Logging", package: "swift-log"),
        ]),
        // The binaries as processes on the real kernel: a simulated node in throwaway namespaces
        // (VLAN parts in the VM), ipamd and aws-cni exec'd, state read back through Netlink.
        .testTarget(name: "IntegrationTests", dependencies: [
            "IPAMDMetrics", "TestSupport", "TestSupportShim", "NetModel", "Netlink", "Datapath", "EnforcingMode", "CNI", "IPAMDProtocol", "IPAMDCore", "SystemIO",
        ]),
        // The cloud clients against moto (EC2, STS) and the IMDS test server on loopback
        // (scripts/tests/cloud-sim.py), SigV4 against botocore.
        .testTarget(name: "CloudTests", dependencies: [
            "AWSCloud", "NetModel", "TestSupport", .product(name: "Logging", package: "swift-log"),
        ]),
        .testTarget(name: "PrivilegedTests", dependencies: [
            "NetModel", "Netlink", "Datapath", "EnforcingMode", "CNIPlugin", "IPAMDProtocol", "NodeSetup", "TestSupport",
        ]),
    ]
)
