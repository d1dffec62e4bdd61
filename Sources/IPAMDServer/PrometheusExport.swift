import CoreMetrics
import IPAMDMetrics
import Prometheus

/// swift-metrics to Prometheus with the catalogue's help texts and buckets (swift-prometheus's own
/// factory writes no HELP lines, which `promtool check metrics` flags).
public struct CatalogMetricsFactory: MetricsFactory {
    public let registry: PrometheusCollectorRegistry

    public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) { self.registry = registry }

    func descriptor(_ label: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: label, unitName: "", helpText: MetricsCatalog.definition(label)?.help ?? "")
    }

    func buckets(_ label: String) -> [Double] {
        MetricsCatalog.definition(label)?.buckets.nonEmpty ?? [0.001, 0.01, 0.1, 1, 10]
    }

    public func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler {
        registry.makeCounter(descriptor: descriptor(label), labels: dimensions)
    }

    public func makeFloatingPointCounter(label: String, dimensions: [(String, String)]) -> any FloatingPointCounterHandler {
        registry.makeCounter(descriptor: descriptor(label), labels: dimensions)
    }

    public func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler {
        guard aggregate else { return registry.makeGauge(descriptor: descriptor(label), labels: dimensions) }
        return registry.makeValueHistogram(descriptor: descriptor(label), labels: dimensions, buckets: buckets(label))
    }

    public func makeMeter(label: String, dimensions: [(String, String)]) -> any MeterHandler {
        registry.makeGauge(descriptor: descriptor(label), labels: dimensions)
    }

    public func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler {
        registry.makeDurationHistogram(descriptor: descriptor(label), labels: dimensions,
                                       buckets: buckets(label).map { Duration.nanoseconds(Int64($0 * 1e9)) })
    }

    // Series live as long as the process: Prometheus expects a counter to persist between scrapes.
    public func destroyCounter(_ handler: any CounterHandler) {}
    public func destroyFloatingPointCounter(_ handler: any FloatingPointCounterHandler) {}
    public func destroyRecorder(_ handler: any RecorderHandler) {}
    public func destroyMeter(_ handler: any MeterHandler) {}
    public func destroyTimer(_ handler: any TimerHandler) {}
}

/// `GET /metrics` in the Prometheus text format.
public struct MetricsRoutes: HTTPRoutes {
    let registry: PrometheusCollectorRegistry

    public init(registry: PrometheusCollectorRegistry) { self.registry = registry }

    public var paths: [String] { ["/metrics"] }

    public func reply(path: String, query: String) -> HTTPReply {
        HTTPReply(.ok, contentType: "text/plain; version=0.0.4; charset=utf-8", body: registry.emitToBuffer())
    }
}

extension Array {
    fileprivate var nonEmpty: Self? { isEmpty ? nil : self }
}
